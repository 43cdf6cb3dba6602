"""POST /explain: the prediction for one image, and the pixels it rests on (the method: ``app/saliency.py``)."""

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from services.inference.app.auth import ApiKeyDep
from services.inference.app.deps import ModelDep, ServingDep
from services.inference.app.inputs import Pixels, parse_top_k, read_one_image
from services.inference.app.replica import MODEL_VERSION_HEADER
from services.inference.app.responses import OrjsonResponse
from services.inference.app.routes.predict import PICTURE, PICTURE_TYPES, TOP_K
from services.inference.app.schemas import Explanation, error_responses

router = APIRouter(tags=["predict"], dependencies=[ApiKeyDep])  # API_KEYS, when set


class ExplainJson(BaseModel):
    """For /docs: the JSON form (parsed like /predict's; ``instances`` is refused)."""

    model_config = ConfigDict(extra="forbid")
    pixels: Pixels


OPENAPI = {
    "parameters": [TOP_K],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object", "required": ["file"],
                    "properties": {"file": {**PICTURE, "description": "one picture (PNG, JPEG, GIF, BMP, WebP)"}},
                },
                "encoding": {"file": {"contentType": PICTURE_TYPES}},
            },
            "application/json": {"schema": ExplainJson.model_json_schema(ref_template="#/components/schemas/{model}")},
        },
    }
}


@router.post(
    "/explain",
    response_model=Explanation,
    responses=error_responses(400, 401, 408, 413, 415, 422, 503),
    openapi_extra=OPENAPI,
    summary="Classify one picture and show which pixels the answer rests on",
    description="The same single-image inputs and errors as /predict. Answers the prediction plus `saliency` "
                "(28 rows of 28 values in [0, 1]), the `method` that made it, and `overlay_png_base64`: the 28x28 "
                "input enlarged to 280x280 with the saliency as a heat map on top.",
)
async def explain_route(request: Request, serving: ServingDep, loaded: ModelDep) -> OrjsonResponse:
    top_k = parse_top_k(request.query_params.get("top_k"))
    image = await read_one_image(request, serving.settings)
    explanation = await serving.explainer.explain(loaded, image.pixels[0], top_k)
    return OrjsonResponse({**explanation, "warnings": image.warnings[0]},
                          headers={MODEL_VERSION_HEADER: explanation["model_version"]})
