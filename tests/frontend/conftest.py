"""Frontend fixtures: the real inference API as a process, a Flask app factory with private cache keys, and the
real gunicorn frontend in front of the real default model (for the end-to-end and browser tests).

``FRONTEND_URL`` (with ``FRONTEND_API_URL``, the inference API the page uses) points ``frontend_server`` at a page
that is already running, e.g. the container stack (``scripts/compose_smoke.sh`` runs the browser tests that way);
then no server is started.
"""

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from flask import Flask

from services.frontend.app import create_app
from services.frontend.app.config import Settings
from tests.processes import REPO_ROOT, InferenceServer, ServerProcess, free_port

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"


def start_inference(model_dir: Path, data_dir: Path, workdir: Path, port: int | None = None) -> InferenceServer:
    """The real ``python -m services.inference``, serving ``model_dir`` and the test images of ``data_dir``."""
    artifacts = workdir / "artifacts"
    artifacts.mkdir(exist_ok=True)
    return InferenceServer(workdir, wait_for="/ready", port=port, ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=model_dir,
                           DATA_DIR=data_dir, THREADS="1").start()


@pytest.fixture(scope="session")
def inference_api(tiny_artifacts, tiny_data_dir, tmp_path_factory) -> Iterator[str]:
    """The inference API serving the tiny model and the 200 tiny test images (for the view tests)."""
    server = start_inference(tiny_artifacts, tiny_data_dir, tmp_path_factory.mktemp("fe-inference"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def real_inference_api(default_model_dir, real_data_dir, tmp_path_factory) -> Iterator[str]:
    """The inference API serving the shipped default model and the real FashionMNIST test set."""
    server = start_inference(default_model_dir, real_data_dir, tmp_path_factory.mktemp("fe-real-inference"))
    try:
        yield server.url
    finally:
        server.stop()


def new_prefix() -> str:
    return f"test-frontend:{uuid.uuid4().hex[:12]}:"


def delete_prefixed(redis_url: str, prefixes: list[str]) -> None:
    """Remove only the keys this test wrote (Redis may be stopped if the test failed half-way)."""
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=2)
        for prefix in prefixes:
            keys = list(client.scan_iter(match=prefix + "*"))
            if keys:
                client.delete(*keys)
    except redis.RedisError:
        pass


@pytest.fixture
def make_app(redis_server, inference_api) -> Iterator[Callable[..., Flask]]:
    """Build the app with test settings: the tiny inference API, the private Redis, a fresh key prefix.

    No expiry or timeout may race the machine: cached /metrics lasts an hour (a test about expiry deletes the key,
    as its TTL would), API calls may take 30 s (/health's too), and a Redis call 10 s before the app gives up on
    Redis (the default 0.2 s could pass on a busy machine and turn an expected cache hit into a miss). A stopped
    Redis or API still fails at once (connection refused)."""
    prefixes: list[str] = []

    def factory(**overrides) -> Flask:
        values = dict(inference_url=inference_api, redis_url=redis_server.url, cache_prefix=new_prefix(),
                      secret_key="test-secret", redis_retry_s=0.0, redis_timeout_s=10.0, metrics_ttl_s=3600,
                      api_connect_timeout_s=5.0, api_read_timeout_s=30.0, api_health_timeout_s=30.0)
        settings = Settings(**{**values, **overrides})
        prefixes.append(settings.cache_prefix)
        app = create_app(settings)
        app.config["TESTING"] = True
        return app

    yield factory
    delete_prefixed(redis_server.url, prefixes)


@dataclass
class Frontend:
    url: str
    prefix: str
    inference_url: str


@pytest.fixture(scope="session")
def frontend_server(request, tmp_path_factory) -> Iterator[Frontend]:
    """The real ``python -m services.frontend`` (gunicorn, 2 workers) in front of the real default model, or the
    page at ``FRONTEND_URL``. Its Redis and API timeouts are generous, as in ``make_app``: a busy machine makes it
    slower, never a cache miss or an error."""
    if os.environ.get("FRONTEND_URL"):
        api_url = os.environ.get("FRONTEND_API_URL")
        assert api_url, "FRONTEND_URL needs FRONTEND_API_URL: the inference API that page uses"
        yield Frontend(os.environ["FRONTEND_URL"].rstrip("/"), prefix="", inference_url=api_url.rstrip("/"))
        return
    real_inference_api = request.getfixturevalue("real_inference_api")
    redis_server = request.getfixturevalue("redis_server")
    port = free_port()
    prefix = new_prefix()
    env = {"PORT": str(port), "HOST": "127.0.0.1", "INFERENCE_URL": real_inference_api,
           "REDIS_URL": redis_server.url, "CACHE_PREFIX": prefix, "SECRET_KEY": "e2e-secret", "WORKERS": "2",
           "THREADS": "4", "REDIS_TIMEOUT_S": "10", "API_CONNECT_TIMEOUT_S": "5", "API_READ_TIMEOUT_S": "30",
           "API_HEALTH_TIMEOUT_S": "30"}
    log = tmp_path_factory.mktemp("fe-gunicorn") / "frontend.log"
    server = ServerProcess([sys.executable, "-m", "services.frontend"], f"http://127.0.0.1:{port}/health",
                           env=env, log_path=log).start()
    try:
        yield Frontend(f"http://127.0.0.1:{port}", prefix, real_inference_api)
    finally:
        server.stop()
        delete_prefixed(redis_server.url, [prefix])
