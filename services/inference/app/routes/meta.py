"""Liveness, readiness and metrics: what orchestrators, dashboards and the web page poll."""

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from services.inference.app.deps import ModelDep, ServingDep
from services.inference.app.replica import MODEL_VERSION_HEADER
from services.inference.app.responses import OrjsonResponse
from services.inference.app.schemas import Health, Ready, error_responses

router = APIRouter(tags=["meta"])


@router.get("/health", response_model=Health, summary="The process is up")
async def health() -> dict:
    return {"status": "ok"}


@router.get("/ready", response_model=Ready, response_model_exclude_none=True, responses=error_responses(503),
            summary="A model is loaded")
async def ready(loaded: ModelDep, response: Response) -> dict:
    """Ready while a model serves; a model whose graph disagrees with its checkpoint serves with torch, and says so
    (``backend``, ``graph``: present only then)."""
    response.headers[MODEL_VERSION_HEADER] = loaded.version
    answer = {"status": "ready", "model_version": loaded.version}
    if loaded.graph_disagreement is not None:
        answer |= {"backend": loaded.backend.name, "graph": loaded.graph_disagreement}
    return answer


@router.get("/metrics", summary="The serving model, its training metrics, reload errors and samples")
async def metrics(serving: ServingDep) -> OrjsonResponse:
    loaded, reload = serving.store.current, serving.store.reload
    model = None if loaded is None else {
        "version": loaded.version, "device": str(loaded.device), "backend": loaded.backend.name,
        "loaded_at": loaded.loaded_at,
        "source": loaded.source, "checkpoint": loaded.checkpoint, "published_at": loaded.published_at,
        # calibrated false: a checkpoint from before calibration, served as the raw softmax (temperature 1.0)
        "calibrated": loaded.calibrated, "temperature": loaded.temperature,
        # not null: the model's ONNX graph disagrees with its checkpoint, so torch serves it (see /ready)
        "graph_disagreement": loaded.graph_disagreement,
    }
    return OrjsonResponse({
        "model": model,
        "training": None if loaded is None else loaded.training_metrics,
        "reload": {"last_error": reload.last_error, "rejected": reload.rejected,
                   "graph_disagreements": reload.graph_disagreements},
        "samples": {"available": serving.samples.available},
    })


@router.get("/metrics/prometheus", summary="Prometheus text exposition",
            response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def prometheus(serving: ServingDep) -> Response:
    serving.metrics.samples.set(serving.samples.available)
    return Response(serving.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
