"""Liveness, readiness and metrics: what orchestrators, dashboards and the web page poll."""

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from services.inference.app.errors import ApiError
from services.inference.app.responses import OrjsonResponse
from services.inference.app.schemas import Health, Ready, error_responses
from services.inference.app.services import get_services

router = APIRouter(tags=["meta"])


@router.get("/health", response_model=Health, summary="The process is up")
async def health() -> dict:
    return {"status": "ok"}


@router.get("/ready", response_model=Ready, responses=error_responses(503), summary="A model is loaded")
async def ready(request: Request) -> dict:
    loaded = get_services(request).store.current
    if loaded is None:
        raise ApiError(503, "not_ready", "no model yet: nothing published in ARTIFACTS_DIR and no default model "
                                         "in DEFAULT_MODEL_DIR; the service becomes ready when one is published")
    return {"status": "ready", "model_version": loaded.version}


@router.get("/metrics", summary="The serving model, its training metrics, reload errors and samples")
async def metrics(request: Request) -> OrjsonResponse:
    services = get_services(request)
    loaded, reload = services.store.current, services.store.reload
    model = None if loaded is None else {
        "version": loaded.version, "device": str(loaded.device), "backend": loaded.backend.name,
        "loaded_at": loaded.loaded_at,
        "source": loaded.source, "checkpoint": loaded.checkpoint, "published_at": loaded.published_at,
        # calibrated false: a checkpoint from before calibration, served as the raw softmax (temperature 1.0)
        "calibrated": loaded.calibrated, "temperature": loaded.temperature,
    }
    return OrjsonResponse({
        "model": model,
        "training": None if loaded is None else loaded.training_metrics,
        "reload": {"last_error": reload.last_error, "rejected": reload.rejected},
        "samples": {"available": services.samples.available},
    })


@router.get("/metrics/prometheus", summary="Prometheus text exposition",
            response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def prometheus(request: Request) -> Response:
    services = get_services(request)
    services.metrics.samples.set(services.samples.available)
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
