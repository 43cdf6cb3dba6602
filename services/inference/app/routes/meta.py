"""Liveness, readiness and metrics: what orchestrators, dashboards and the web page poll."""

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from services.inference.app.deps import ModelDep, ServicesDep
from services.inference.app.replica import MODEL_VERSION_HEADER
from services.inference.app.responses import OrjsonResponse
from services.inference.app.schemas import Health, Ready, error_responses

router = APIRouter(tags=["meta"])


@router.get("/health", response_model=Health, summary="The process is up")
async def health() -> dict:
    return {"status": "ok"}


@router.get("/ready", response_model=Ready, responses=error_responses(503), summary="A model is loaded")
async def ready(loaded: ModelDep, response: Response) -> dict:
    response.headers[MODEL_VERSION_HEADER] = loaded.version
    return {"status": "ready", "model_version": loaded.version}


@router.get("/metrics", summary="The serving model, its training metrics, reload errors and samples")
async def metrics(services: ServicesDep) -> OrjsonResponse:
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
async def prometheus(services: ServicesDep) -> Response:
    services.metrics.samples.set(services.samples.available)
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
