"""Prometheus metrics, on a registry owned by one app (so two apps in one process, e.g. in tests, never clash).

``PrometheusMiddleware`` is plain ASGI (no per-request task or body copy) and labels requests by route
template (``/samples/{index}``, not the raw path) so the label set stays small. A request whose client went away
before its body was complete is counted with status 499 (see ``errors``), never as a 5xx. The registry also
carries the process's own figures (``process_resident_memory_bytes``, ``process_open_fds``, ...), which the
reliability tests watch across model swaps.
"""

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
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
        self.errors = Counter("inference_errors_total", "Error responses by error code", ["error"], registry=r)
        self.batch_size = Histogram("inference_batch_size", "Images per forward pass", buckets=BATCH_BUCKETS,
                                    registry=r)
        self.batch_seconds = Histogram("inference_batch_duration_seconds", "Seconds per forward pass",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.images = Counter("inference_images_total", "Images classified", registry=r)
        self.model_info = Gauge("inference_model_info", "The serving model (value 1)",
                                ["version", "source", "device"], registry=r)
        self.reloads = Counter("inference_model_reloads_total", "Model loads by outcome", ["outcome"], registry=r)
        self.samples = Gauge("inference_samples_available", "Test images available to /samples", registry=r)
        ProcessCollector(registry=r)

    def observe_batch(self, images: int, seconds: float) -> None:
        self.batch_size.observe(images)
        self.batch_seconds.observe(seconds)
        self.images.inc(images)

    def model_loaded(self, loaded) -> None:
        self.model_info.clear()
        self.model_info.labels(loaded.version, loaded.source, str(loaded.device)).set(1)
        self.reloads.labels("loaded").inc()

    def model_refused(self, _path: str) -> None:
        self.reloads.labels("rejected").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class PrometheusMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

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
