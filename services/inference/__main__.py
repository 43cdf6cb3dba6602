"""``python -m services.inference``: serve the API with uvicorn.

WORKERS processes (by default one per core), each built through the factory (``create_app()`` reads Settings
from the environment) with its own model, micro-batcher, reload poller and serving record; the kernel spreads
connections over them. One process cannot use more than one core for Python (the GIL), and most of a request's
CPU is Python (HTTP, multipart, PNG, JSON): docs/benchmarks.md's "Process layout" has the figures. With several workers
the Prometheus metrics of all of them are added up (``app/metrics_prom.py``) in PROMETHEUS_MULTIPROC_DIR, emptied
here before the workers start (a private temporary folder when it is not set). No reload, no debug server.
After SIGTERM the API serves SHUTDOWN_DELAY_S more seconds before its graceful shutdown (``draining.py`` says why).
"""

import logging
import os
import shutil
import tempfile
from pathlib import Path

import uvicorn

from services.inference.app.config import Settings
from services.inference.draining import serve

log = logging.getLogger("services.inference")


def prepare_multiprocess_metrics() -> Path | None:
    """An empty PROMETHEUS_MULTIPROC_DIR, set in the environment the workers inherit (stale files from an earlier
    run would be added to this run's counters). Returns the folder when it is a private one, to remove at exit."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    path = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="inference-prometheus-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return None if folder else path


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workers = settings.processes
    metrics_dir = prepare_multiprocess_metrics() if workers > 1 else None
    log.info("%d worker process(es), %d model thread(s) each, backend %s", workers, settings.model_threads,
             settings.backend)
    try:
        config = uvicorn.Config(
            "services.inference.app.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level=settings.log_level.lower(),
            access_log=False,  # a log line per request costs more than the prediction; Prometheus counts requests
            proxy_headers=True,  # the client address behind the edge (X-Forwarded-For), only from FORWARDED_ALLOW_IPS
            forwarded_allow_ips=settings.forwarded_allow_ips,
            loop="uvloop",
            http="httptools",
            timeout_worker_healthcheck=settings.worker_ping_timeout_s,
        )
        serve(config, settings.shutdown_delay_s)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
