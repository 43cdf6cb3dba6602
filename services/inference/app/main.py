"""The app factory. The lifespan builds everything stateful ONCE per app: the model (loaded at startup, never
per request, never at import), the micro-batcher and its worker thread, the explainer and its thread, the samples
loader and the reload poller; nothing lives in module globals, so several apps (tests) can coexist in one process.
With SERVING_DIR set, the process also records the model it serves there for the trainer (``shared.serving``), and
follows the pin kept there (``shared.pin``, ``routes/models.py``).
"""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI

from services.inference.app.backends import set_torch_threads
from services.inference.app.batching import MicroBatcher
from services.inference.app.body_limit import BodySizeLimitMiddleware
from services.inference.app.body_rate import BodyRateMiddleware
from services.inference.app.config import Settings
from services.inference.app.errors import install_error_handlers
from services.inference.app.metrics_prom import Metrics, PrometheusMiddleware
from services.inference.app.model_store import LoadedModel, ModelStore
from services.inference.app.replica import ReplicaHeadersMiddleware
from services.inference.app.responses import OrjsonResponse
from services.inference.app.routes import explain, meta, models, predict, samples, training, v2
from services.inference.app.saliency import Explainer
from services.inference.app.sample_store import SampleStore
from services.inference.app.schemas import document_api_keys, document_limits
from services.inference.app.serving_state import ServingState
from shared.device import device_name
from shared.serving import ServingRecord

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        serving = await _start(settings, metrics)
        app.state.serving = serving
        record = _record_serving(serving.store, settings.serving_dir)
        # Move everything loaded so far (torch, FastAPI, the model: ~370k objects) out of the collector's
        # sight: otherwise every full collection walks them all, a 100-300 ms pause for every request in
        # flight, which was most of the p99 under load. Objects made later are still collected as usual.
        gc.freeze()
        poller = asyncio.create_task(_poll_forever(serving.store, settings.reload_interval_s,
                                                   record.touch if record else None))
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            serving.batcher.close()
            serving.explainer.close()
            if record is not None:
                record.remove()

    app = FastAPI(title="FashionMNIST inference API", version="1.0.0", lifespan=lifespan,
                  default_response_class=OrjsonResponse,
                  description="Classifies clothing pictures into the 10 FashionMNIST classes.")
    app.state.metrics = metrics
    openapi = app.openapi  # built once and cached by FastAPI; the limits and key requirement go in the first time
    app.openapi = lambda: document_api_keys(
        document_limits(openapi(), max_files=settings.max_files, max_instances=settings.max_instances),
        required=bool(settings.api_key_list))
    install_error_handlers(app)
    for module in (predict, explain, samples, meta, models, training, v2):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyRateMiddleware, min_rate=settings.min_body_rate, grace_s=settings.body_grace_s)
    app.add_middleware(ReplicaHeadersMiddleware, replica_name=settings.replica_name)
    app.add_middleware(PrometheusMiddleware, metrics=metrics)  # added last = outermost: sees every response
    return app


async def _start(settings: Settings, metrics: Metrics) -> ServingState:
    set_torch_threads(settings.model_threads)
    store = ModelStore(settings.artifacts_dir, settings.default_model_dir, device_name(settings.device),
                       backend=settings.backend, threads=settings.model_threads,
                       serving_dir=settings.serving_dir)
    store.on_loaded.append(metrics.model_loaded)
    store.on_refused.append(metrics.model_refused)
    store.on_graph_disagrees.append(metrics.graph_disagreed)
    await asyncio.to_thread(store.poll)
    if store.current is None:
        log.warning("no model in %s or %s yet; /ready answers 503 until one is published",
                    settings.artifacts_dir, settings.default_model_dir)
    sample_store = SampleStore(settings.data_dir, settings.download)
    sample_store.start_loading()
    batcher = MicroBatcher(store, enabled=settings.batching, max_batch_size=settings.max_batch_size,
                           max_wait_ms=settings.max_batch_wait_ms, threads=settings.model_threads,
                           on_batch=metrics.observe_batch)
    return ServingState(settings=settings, store=store, batcher=batcher, explainer=Explainer(settings.model_threads),
                        samples=sample_store, metrics=metrics)


async def _poll_forever(store: ModelStore, interval_s: float, after_poll: Callable[[], None] | None = None) -> None:
    """Hot reload: check the manifest every interval, loading in a thread so serving never pauses."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.to_thread(store.poll)
            if after_poll is not None:
                after_poll()
        except Exception:  # a poll must never kill the poller; the next one tries again
            log.exception("model reload poll failed")


def _record_serving(store: ModelStore, serving_dir: Path | None) -> ServingRecord | None:
    """Keep SERVING_DIR/<host>-<pid>.json naming the served model, from now on (see ``shared.serving``)."""
    if serving_dir is None:
        return None
    record = ServingRecord(serving_dir)

    def write(loaded: LoadedModel) -> None:
        try:
            record.write(loaded.source, loaded.checkpoint, loaded.version)
        except OSError as error:  # serving matters more than the record; the trainer then keeps more models
            log.warning("cannot record the served model in %s: %s", serving_dir, error)

    store.on_loaded.append(write)
    if store.current is not None:
        write(store.current)
    return record
