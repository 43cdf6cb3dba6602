"""Prometheus metrics, on a registry owned by one app (so two apps in one process, e.g. in tests, never clash).

``PrometheusMiddleware`` is plain ASGI (no per-request task or body copy) and labels requests by route
template (``/samples/{index}``, not the raw path) so the label set stays small. A request whose client went away
before its body was complete is counted with status 499 (see ``errors``), never as a 5xx. The registry also
counts the requests in progress (``inference_http_requests_in_progress``, uploads still arriving included: the
reliability tests wait on it to know their stalled clients are inside the app) and carries the process's own
figures (``process_resident_memory_bytes``, ``process_open_fds``, ...), which they watch across model swaps.

Several worker processes (WORKERS > 1): prometheus_client's multiprocess mode. ``__main__`` points
PROMETHEUS_MULTIPROC_DIR at an emptied folder before the workers start; each worker writes its values there and
the worker that answers a scrape adds them all up (``MultiProcessCollector``), so counters and histograms count
every request whichever worker served it. ``inference_model_info`` is then the highest value across workers
(1 while any worker serves that version) and the ``process_*`` figures are those of the worker that answered.
"""

import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("inference_http_requests_total", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("inference_http_request_duration_seconds", "HTTP request latency by route",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_progress = Gauge("inference_http_requests_in_progress", "HTTP requests received and not yet "
                                 "answered, uploads still arriving included", registry=r, multiprocess_mode="livesum")
        self.errors = Counter("inference_errors_total", "Error responses by error code", ["error"], registry=r)
        self.batch_size = Histogram("inference_batch_size", "Images per forward pass", buckets=BATCH_BUCKETS,
                                    registry=r)
        self.batch_seconds = Histogram("inference_batch_duration_seconds", "Seconds per forward pass",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.images = Counter("inference_images_total", "Images classified", registry=r)
        self.model_info = Gauge("inference_model_info", "The serving model (value 1)",
                                ["version", "source", "device"], registry=r, multiprocess_mode="max")
        self.reloads = Counter("inference_model_reloads_total", "Model loads by outcome", ["outcome"], registry=r)
        # A broken release: a model whose ONNX graph does not answer its checkpoint's probe logits (``model_store``).
        self.graph_disagreements = Counter("inference_graph_disagreements_total", "Model loads that found the ONNX "
                                           "graph disagreeing with its checkpoint (then torch serves, or the model "
                                           "is refused)", registry=r)
        self.samples = Gauge("inference_samples_available", "Test images available to /samples", registry=r,
                             multiprocess_mode="max")
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")  # set by __main__ for WORKERS > 1
        self.process = CollectorRegistry(auto_describe=True) if self.multiprocess_dir else r
        ProcessCollector(registry=self.process)
        self._model_labels: tuple[str, str, str] | None = None

    def observe_batch(self, images: int, seconds: float) -> None:
        self.batch_size.observe(images)
        self.batch_seconds.observe(seconds)
        self.images.inc(images)

    def model_loaded(self, loaded) -> None:
        if self.multiprocess_dir and self._model_labels is not None:  # the files keep a cleared label: zero it
            self.model_info.labels(*self._model_labels).set(0)
        self.model_info.clear()
        self._model_labels = (loaded.version, loaded.source, str(loaded.device))
        self.model_info.labels(*self._model_labels).set(1)
        self.reloads.labels("loaded").inc()

    def model_refused(self, _path: str) -> None:
        self.reloads.labels("rejected").inc()

    def graph_disagreed(self, _path: str) -> None:
        self.graph_disagreements.inc()

    def exposition(self) -> bytes:
        if not self.multiprocess_dir:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, path=self.multiprocess_dir)
        return generate_latest(every_worker) + generate_latest(self.process)


class PrometheusMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        self.metrics.in_progress.inc()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - started)
            self.metrics.in_progress.dec()  # last: once it is back down, this request is counted
