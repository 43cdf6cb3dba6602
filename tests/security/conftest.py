"""The security suite: who may call what (API keys, the admin token), the edge's per-client limits, the body deadline
and whose X-Forwarded-For is believed, against real processes on 127.0.0.1: the inference API, the page (gunicorn),
a private Redis, and the edge as a local nginx running deploy/nginx/ (``tests.processes.EdgeServer``).

Clients are told apart by their source address: the whole 127.0.0.0/8 is this machine's loopback, so a client
bound to 127.0.0.2 and one bound to 127.0.0.3 are two clients to nginx, on the same machine. Limits are tested
with low figures set through the same settings a deployer uses, and by counting answers, never by timing them.
"""

import http.client
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.processes import EdgeServer, InferenceServer, ServerProcess, free_port

API_KEYS = ("key-for-scripts-2b7c1e9f0a4d", "key-for-the-page-5e8d2c7a1f3b")
PAGE_KEY = API_KEYS[1]
MIN_BODY_RATE, BODY_GRACE_S = 1000, 2  # a short, configured deadline: a trickle is cut after about 2 s


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def call(url: str, path: str, method: str = "GET", source: str = "127.0.0.1", body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 30) -> Answer:
    """One request from the client address ``source`` (any 127.x.y.z), on its own connection."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout, source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, {name.lower(): value for name, value in response.getheaders()},
                      response.read())
    finally:
        connection.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


FIGURES = pytest.StashKey[dict[str, str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES] = {}


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if config.stash.get(FIGURES, {}):
        terminalreporter.section("security figures")
        for name, value in config.stash[FIGURES].items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture
def figures(request) -> dict[str, str]:
    """What a test measured (name -> text), printed at the end of the run (docs/security.md, "Tests and figures")."""
    return request.config.stash[FIGURES]


@pytest.fixture(scope="package")
def log_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("security-logs")


@pytest.fixture(scope="package")
def api(log_dir, default_model_dir, tiny_data_dir, tmp_path_factory) -> Iterator[InferenceServer]:
    """The inference API with API_KEYS set and a short body deadline (MIN_BODY_RATE 1000 B/s after 2 s)."""
    artifacts = tmp_path_factory.mktemp("security-artifacts")
    server = InferenceServer(log_dir, wait_for="/ready", ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=default_model_dir,
                             DATA_DIR=tiny_data_dir, THREADS="1", API_KEYS=",".join(API_KEYS),
                             MIN_BODY_RATE=str(MIN_BODY_RATE), BODY_GRACE_S=str(BODY_GRACE_S))
    with server.start(timeout=120):
        yield server


@pytest.fixture(scope="package")
def page(api, log_dir, redis_server) -> Iterator[ServerProcess]:
    """The real page (gunicorn) using the API with its own key."""
    port = free_port()
    server = ServerProcess([sys.executable, "-m", "services.frontend"], f"http://127.0.0.1:{port}/health", env={
        "HOST": "127.0.0.1", "PORT": str(port), "INFERENCE_URL": api.url, "INFERENCE_API_KEY": PAGE_KEY,
        "REDIS_URL": redis_server.url, "CACHE_PREFIX": f"test-security-{port}:", "WORKERS": "1", "THREADS": "4",
        "SECRET_KEY": "test-secret"}, log_path=log_dir / f"page-{port}.log")
    server.url = f"http://127.0.0.1:{port}"
    with server.start(timeout=60):
        yield server


@pytest.fixture(scope="package")
def start_edge(api, page, log_dir) -> Iterator[Callable[..., EdgeServer]]:
    """``start_edge(EDGE_RATE_LIMIT=..., ...)``: a local nginx edge in front of ``api`` and ``page`` with these
    settings (the defaults otherwise), all stopped at the end of the suite."""
    started: list[EdgeServer] = []

    def start(**settings: str) -> EdgeServer:
        edge = EdgeServer(log_dir, api.url, page.url, **settings)
        started.append(edge)
        return edge.start(timeout=30)

    yield start
    for edge in started:
        edge.stop()


def log_text(server: ServerProcess) -> str:
    return Path(server.log_path).read_text(errors="replace")
