"""X-Served-By and X-Model-Version (``app/replica.py``) against a real server: every answer names the replica,
and the version header always names the model that computed the answer, through a hot swap too."""

import shutil
import socket
import threading

import requests

from services.inference.app.config import Settings
from shared.artifacts import read_manifest
from tests.inference.test_reload import PIXELS, _republish_changed
from tests.waiting import wait_until


def test_default_replica_name_is_the_host_name(monkeypatch):
    monkeypatch.delenv("REPLICA_NAME", raising=False)
    assert Settings().replica_name == socket.gethostname()
    monkeypatch.setenv("REPLICA_NAME", "replica-7")
    assert Settings().replica_name == "replica-7"


def test_every_answer_names_the_replica_and_versioned_ones_the_model_that_computed_them(start_server, tiny_artifacts,
                                                                                        tmp_path):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, artifacts)
    version = read_manifest(artifacts).model_version
    with start_server(ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=tmp_path / "none", DATA_DIR=tmp_path / "none",
                      RELOAD_INTERVAL_S="0.2", REPLICA_NAME="replica-a") as url:
        single = requests.post(f"{url}/predict", json={"pixels": PIXELS}, timeout=5)
        batch = requests.post(f"{url}/predict", json={"instances": [PIXELS, PIXELS]}, timeout=5)
        explained = requests.post(f"{url}/explain", json={"pixels": PIXELS}, timeout=10)
        ready = requests.get(f"{url}/ready", timeout=5)
        for answer in (single, batch, explained, ready):
            assert answer.status_code == 200, answer.text
            assert answer.headers["X-Served-By"] == "replica-a"
            assert answer.headers["X-Served-By-Worker"].isdigit()  # the worker process (its pid)
            assert answer.headers["X-Model-Version"] == answer.json()["model_version"] == version
        assert single.headers["content-length"] == str(len(single.content)), "the body is passed on unchanged"
        refused = requests.post(f"{url}/predict", json={"pixels": [[1, 2]]}, timeout=5)
        assert refused.status_code == 422 and "error" in refused.json()
        assert refused.headers["X-Served-By"] == "replica-a" and refused.headers["X-Model-Version"] == version
        health = requests.get(f"{url}/health", timeout=5)
        assert health.headers["X-Served-By"] == "replica-a" and "X-Model-Version" not in health.headers

        # Through a swap under load: the header and the body agree on every answer, and both versions appear.
        stop, mismatches, seen = threading.Event(), [], set()

        def hammer() -> None:
            with requests.Session() as session:
                while not stop.is_set():
                    answer = session.post(f"{url}/predict", json={"pixels": PIXELS}, timeout=10)
                    body_version = answer.json().get("model_version")
                    seen.add(body_version)
                    if answer.headers.get("X-Model-Version") != body_version:
                        mismatches.append((answer.status_code, answer.headers.get("X-Model-Version"), body_version))

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: version in seen, "answers from the old model under load")
            new_version = _republish_changed(artifacts)
            wait_until(lambda: new_version in seen, "the new version")
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert mismatches == [] and {version, new_version} <= seen


def test_no_version_header_before_any_model(start_server, tmp_path):
    (tmp_path / "empty").mkdir()
    with start_server(ARTIFACTS_DIR=tmp_path / "empty", DEFAULT_MODEL_DIR=tmp_path / "empty",
                      DATA_DIR=tmp_path / "none", REPLICA_NAME="replica-b") as url:
        answer = requests.post(f"{url}/predict", json={"pixels": PIXELS}, timeout=5)
        assert answer.status_code == 503 and answer.headers["X-Served-By"] == "replica-b"
        assert "X-Model-Version" not in answer.headers
