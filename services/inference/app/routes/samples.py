"""Real test images, for trying the model without a picture at hand."""

from fastapi import APIRouter, Path, Query, Request

from services.inference.app.responses import OrjsonResponse
from services.inference.app.schemas import Sample, Samples, error_responses
from services.inference.app.services import get_services

router = APIRouter(tags=["samples"])


@router.get("/samples/random", response_model=Samples, responses=error_responses(422, 503),
            summary="Random test images with their true labels")
async def random_samples(request: Request, count: int = Query(1, ge=1, le=64)) -> OrjsonResponse:
    return OrjsonResponse({"samples": get_services(request).samples.random_samples(count)})


@router.get("/samples/{index}", response_model=Sample, responses=error_responses(404, 422, 503),
            summary="One test image by its index in the test split")
async def sample(request: Request, index: int = Path(ge=0)) -> OrjsonResponse:
    return OrjsonResponse(get_services(request).samples.sample(index))
