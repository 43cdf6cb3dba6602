"""Real test images, for trying the model without a picture at hand; with ``explain=true`` each comes with the
model's prediction and explanation, so the page shows a random sample after ONE call (its pixels never travel
back to the API)."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.inference.app.auth import ApiKeyDep
from services.inference.app.deps import ServingDep
from services.inference.app.errors import ApiError
from services.inference.app.responses import OrjsonResponse
from services.inference.app.schemas import Sample, Samples, error_responses
from services.inference.app.serving_state import ServingState

# With API_KEYS set, samples need a key too: with explain=true one costs ~540 forward passes, more than a /predict.
router = APIRouter(tags=["samples"], dependencies=[ApiKeyDep])
MAX_EXPLAINED = 8  # an explanation is ~540 forward passes: a bounded number per request

Explain = Annotated[bool, Query(description="add `prediction`: what /explain answers for the image")]
TopK = Annotated[int, Query(ge=1, le=10, description="classes listed in the prediction (with explain)")]


@router.get("/samples/random", response_model=Samples, responses=error_responses(401, 422, 503),
            summary="Random test images with their true labels (and, with explain, the model's answer)")
async def random_samples(serving: ServingDep, count: Annotated[int, Query(ge=1, le=64)] = 1,
                         explain: Explain = False, top_k: TopK = 3) -> OrjsonResponse:
    if explain and count > MAX_EXPLAINED:
        raise ApiError(422, "too_many_to_explain", f"explain=true answers at most {MAX_EXPLAINED} samples per "
                                                   f"request, not {count}")
    samples = serving.samples.random_samples(count)
    if explain:
        for item in samples:
            await _add_prediction(serving, item, top_k)
    return OrjsonResponse({"samples": samples})


@router.get("/samples/{index}", response_model=Sample, responses=error_responses(401, 404, 422, 503),
            summary="One test image by its index in the test split (and, with explain, the model's answer)")
async def sample(serving: ServingDep, index: Annotated[int, Path(ge=0)], explain: Explain = False,
                 top_k: TopK = 3) -> OrjsonResponse:
    item = serving.samples.sample(index)
    if explain:
        await _add_prediction(serving, item, top_k)
    return OrjsonResponse(item)


async def _add_prediction(serving: ServingState, item: dict, top_k: int) -> None:
    loaded = serving.store.require_current()
    item["prediction"] = await serving.explainer.explain(loaded, serving.samples.pixels(item["index"]), top_k)
