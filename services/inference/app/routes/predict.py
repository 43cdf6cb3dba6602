"""POST /predict: one route for multipart uploads and JSON pixels (see ``inputs`` for the body forms)."""

from fastapi import APIRouter, Request

from services.inference.app import classify
from services.inference.app.auth import ApiKeyDep
from services.inference.app.deps import ModelDep, ServingDep
from services.inference.app.inputs import PredictJson, parse_top_k, read_pixels
from services.inference.app.replica import MODEL_VERSION_HEADER
from services.inference.app.responses import OrjsonResponse
from services.inference.app.schemas import BatchPrediction, PredictionResult, error_responses

router = APIRouter(tags=["predict"], dependencies=[ApiKeyDep])  # API_KEYS, when set

PICTURE = {"type": "string", "format": "binary", "minLength": 1}  # a file's bytes: never empty
PICTURE_TYPES = "image/png, image/jpeg, image/gif, image/bmp, image/webp"
TOP_K = {"name": "top_k", "in": "query", "required": False, "description": "how many classes to list (1-10)",
         "schema": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3}}
OPENAPI = {
    "parameters": [TOP_K],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object", "required": ["file"],
                    # minItems 1; maxItems is MAX_FILES, filled in by schemas.document_limits
                    "properties": {"file": {"type": "array", "minItems": 1, "items": PICTURE,
                                            "description": "one or more pictures (PNG, JPEG, GIF, BMP, WebP): a "
                                                           "photo of one garment on a plain background, any size, "
                                                           "or a 28x28 image in the data set's style"}},
                },
                "encoding": {"file": {"contentType": PICTURE_TYPES}},
            },
            "application/json": {"schema": PredictJson.model_json_schema(ref_template="#/components/schemas/{model}")},
        },
    }
}


@router.post(
    "/predict",
    response_model=PredictionResult | BatchPrediction,
    responses=error_responses(400, 401, 408, 413, 415, 422, 503),
    openapi_extra=OPENAPI,
    summary="Classify pictures or 28x28 pixel arrays",
    description="One `file` or `pixels` -> one result; several files or `instances` -> `predictions` in order.",
)
async def predict_route(request: Request, serving: ServingDep, _model: ModelDep) -> OrjsonResponse:
    top_k = parse_top_k(request.query_params.get("top_k"))  # (the batcher picks the model per batch: hot swaps)
    with serving.batcher.handling():
        # The whole body first: only a request whose input is complete counts as arriving, so a batch never
        # waits for an upload that is still trickling in (or stalled) while its images are being decoded.
        await request.body()
        with serving.batcher.arriving():
            images = await read_pixels(request, serving.settings)  # Starlette keeps the body: read once
        probabilities, loaded = await serving.batcher.predict(images.pixels)
    results = classify.results(probabilities, top_k, loaded.version, images.warnings)
    body = results[0] if images.single else {"predictions": results, "model_version": loaded.version}
    return OrjsonResponse(body, headers={MODEL_VERSION_HEADER: loaded.version})
