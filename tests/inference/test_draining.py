"""SHUTDOWN_DELAY_S: after SIGTERM the API keeps serving for the delay, then shuts down (services/inference/
draining.py). SIGTERM goes to the main process only, as `docker stop` and Swarm send it; with several workers that
process is uvicorn's supervisor, which must hold the signal back from its workers.

The delays are chosen so that no assertion depends on the machine's speed: a long one (10 minutes) while the test
checks that requests are still answered and that a second SIGTERM stops the server at once; a short one only
where the test waits, with a deadline, for the server to stop by itself."""

import os
import signal
import time

import pytest
import requests

from tests.processes import InferenceServer


def _until(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _server(tmp_path, default_model_dir, workers: str, delay: str) -> InferenceServer:
    return InferenceServer(tmp_path, ARTIFACTS_DIR=tmp_path / "none", DEFAULT_MODEL_DIR=default_model_dir,
                           DATA_DIR=tmp_path / "none", WORKERS=workers, SHUTDOWN_DELAY_S=delay)


def _refused(url: str) -> bool:
    try:
        requests.get(f"{url}/health", timeout=5)
    except requests.ConnectionError:
        return True
    return False


@pytest.mark.parametrize("workers", ["1", "2"])
def test_after_sigterm_the_api_keeps_serving_for_the_delay_and_a_second_sigterm_stops_it(tmp_path, default_model_dir,
                                                                                          workers):
    server = _server(tmp_path, default_model_dir, workers, delay="600")
    with server.start(timeout=120):
        os.kill(server.process.pid, signal.SIGTERM)
        _until(lambda: "SIGTERM: serving for 600.0 s more" in server.log_path.read_text(), "the drain to begin")
        with requests.Session() as session:  # new connections, and a kept-alive one, are still served
            for _ in range(5):
                assert session.get(f"{server.url}/ready", timeout=10).status_code == 200
        assert server.process.poll() is None

        os.kill(server.process.pid, signal.SIGTERM)
        _until(lambda: server.process.poll() is not None, "the second SIGTERM to stop the server")
        assert _refused(server.url)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_after_the_delay_the_api_stops_by_itself(tmp_path, default_model_dir, workers):
    server = _server(tmp_path, default_model_dir, workers, delay="0.5")
    with server.start(timeout=120):
        os.kill(server.process.pid, signal.SIGTERM)
        _until(lambda: server.process.poll() is not None, "the server to stop after its delay")
        assert "SIGTERM: serving for 0.5 s more" in server.log_path.read_text()
        assert _refused(server.url)
