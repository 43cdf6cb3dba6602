"""The reliability suite: what a broken client, a stalled upload or a busy model swap may cost a running service.

Process-level cases (``make test``) run against real ``python -m services.inference`` processes on 127.0.0.1;
the edge cases (``test_edge.py``) run against the compose stack through nginx (``make compose-smoke`` sets
EDGE_API_URL and EDGE_PAGE_URL). Every load is bounded in count and time. Each test records the figures it
measured with the ``figures`` fixture; they are printed at the end of the run (the table in
docs/reliability.md quotes them).
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import inference_server

FIGURES = pytest.StashKey[dict[str, str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES] = {}


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    figures = config.stash.get(FIGURES, {})
    if figures:
        terminalreporter.section("reliability figures")
        for name, value in figures.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture
def figures(request) -> dict[str, str]:
    """Where a test puts what it measured (name -> text), for the summary at the end of the run."""
    return request.config.stash[FIGURES]


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reliability-logs")


@pytest.fixture(scope="module")
def start_server(log_dir) -> Callable:
    """``start_server(**env)``: a real inference process (``tests.processes.inference_server``) with these settings."""
    return lambda **env: inference_server(log_dir, **env)


@pytest.fixture(scope="module")
def server(start_server, default_model_dir, tmp_path_factory) -> Iterator[str]:
    """The shipped default model, default batching (MAX_BATCH_WAIT_MS 2), one model thread."""
    empty = tmp_path_factory.mktemp("no-artifacts")
    with start_server(ARTIFACTS_DIR=empty, DEFAULT_MODEL_DIR=default_model_dir, DATA_DIR=empty, THREADS="1") as url:
        yield url


def server_log(log_dir: Path, url: str) -> Path:
    """The log file ``inference_server`` writes for the server at ``url``."""
    return log_dir / f"inference-{url.rsplit(':', 1)[1]}.log"


def prometheus(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics/prometheus: (name, sorted labels) -> value."""
    text = requests.get(f"{url}/metrics/prometheus", timeout=10).text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def count(samples: dict, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(value for (sample, sample_labels), value in samples.items()
               if sample == name and labels.items() <= dict(sample_labels).items())


def server_errors(samples: dict) -> float:
    """5xx answers counted by the service, plus internal errors."""
    fives = sum(value for (name, labels), value in samples.items()
                if name == "inference_http_requests_total" and dict(labels)["status"].startswith("5"))
    return fives + count(samples, "inference_errors_total", error="internal_error")
