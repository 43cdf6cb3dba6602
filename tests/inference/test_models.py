"""Model versions against real servers: GET /models and /models/{version}, a pin every worker follows, an unpin,
refusals that leave the old model serving, and who may pin at all (ADMIN_TOKEN, SERVING_DIR)."""

import json
import os
import shutil
import time

import pytest
import requests

from shared.artifacts import publish_model, read_manifest
from shared.checkpoint import build_checkpoint, load_checkpoint
from shared.pin import pin_file
from tests.inference.test_reload import _republish_changed
from tests.inference.test_workers import _records
from tests.processes import InferenceServer

TOKEN = "test-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
SLOW_MACHINE_S = 300.0  # deadlines for what a busy 2-core machine may take long to do (start workers, load models)


def _until(condition, what: str, timeout: float = SLOW_MACHINE_S):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def _serve(log_dir, **env) -> InferenceServer:
    """A real server, given as long as it needs to start (several workers each import torch and load a model)."""
    return InferenceServer(log_dir, **env).start(timeout=SLOW_MACHINE_S)


def _versions_served(serving) -> list[str]:
    return sorted(record["model_version"] for record in _records(serving))


def _all_polled_since(serving, moment: float, workers: int) -> bool:
    """Every worker's record was touched (each poll touches it) after ``moment``: each has seen what changed."""
    paths = list(serving.glob("*.json"))
    return len(paths) == workers and all(path.stat().st_mtime > moment for path in paths)


def _publish_kept_out(artifacts) -> str:
    """A model published beside the others but not made latest, as PUBLISH_IF=better does with a worse run."""
    current = read_manifest(artifacts)
    model = load_checkpoint(current.checkpoint_path).build_model("cpu")
    metrics = json.loads(current.metrics_path.read_text())
    checkpoint = build_checkpoint(model, hyperparameters={"note": "kept out by a test"}, epoch=1, metrics={})
    metrics.update(model_version=checkpoint["model_version"], created_at=checkpoint["created_at"],
                   publication={"policy": "better", "latest": False, "reason": "validation accuracy 0.1 < 0.9",
                                "val_accuracy": 0.1, "compared_with": None})
    publish_model(artifacts, checkpoint, metrics, make_latest=False)
    return checkpoint["model_version"]


@pytest.fixture
def two_models(tiny_artifacts, tmp_path):
    """An artifacts folder with two published models (the second is latest) and an empty serving folder."""
    artifacts, serving = tmp_path / "artifacts", tmp_path / "serving"
    shutil.copytree(tiny_artifacts, artifacts)
    first = read_manifest(artifacts).model_version
    second = _republish_changed(artifacts)
    return artifacts, serving, first, second


def test_two_workers_follow_a_pin_hold_it_against_a_new_latest_and_follow_latest_after_unpin(
        two_models, default_model_dir, tmp_path):
    artifacts, serving, first, second = two_models
    kept_out = _publish_kept_out(artifacts)
    with _serve(tmp_path, ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=default_model_dir, DATA_DIR=tmp_path / "none",
                SERVING_DIR=serving, RELOAD_INTERVAL_S="0.2", WORKERS="2", ADMIN_TOKEN=TOKEN) as server:
        url = server.url
        _until(lambda: _versions_served(serving) == [second, second], "both workers on the latest model")
        listing = requests.get(f"{url}/models", timeout=10).json()
        assert (listing["latest"], listing["served"], listing["pinned"], listing["following"]) == \
            (second, second, None, "latest")
        rows = {row["version"]: row for row in listing["models"]}
        default_version = read_manifest(default_model_dir).model_version
        assert set(rows) == {first, second, kept_out, default_version}
        assert rows[second]["latest"] and rows[second]["served"] and not rows[first]["latest"]
        assert rows[default_version]["source"] == "default" and rows[first]["source"] == "artifacts"
        assert rows[kept_out]["kept_out"] == "validation accuracy 0.1 < 0.9" and rows[first]["kept_out"] is None
        trained = json.loads((artifacts / "models" / f"{first}.metrics.json").read_text())
        assert rows[first]["test_accuracy"] == trained["test_accuracy"] and rows[first]["macro_f1"] == \
            trained["macro_f1"] and rows[first]["ece"] == trained["calibration"]["test"]["after"]["ece"]

        # One model's metrics in the shape of /metrics.
        metrics = requests.get(f"{url}/metrics", timeout=10).json()
        one = requests.get(f"{url}/models/{metrics['model']['version']}", timeout=10).json()
        assert one["training"] == metrics["training"] and one["model"].items() >= {
            key: value for key, value in metrics["model"].items() if key != "loaded_at"}.items()
        other = requests.get(f"{url}/models/{first}", timeout=10).json()
        assert other["model"]["version"] == first and other["training"] == trained
        assert other["model"]["temperature"] == trained["calibration"]["temperature"] and not other["model"]["served"]

        answer = requests.post(f"{url}/models/{first}/pin", headers=ADMIN, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["pinned"] == answer.json()["served"] == answer.headers["X-Model-Version"] == first
        assert answer.json()["pin"]["previous"] == second and answer.json()["pin"]["source"] == "artifacts"
        _until(lambda: _versions_served(serving) == [first, first], "both workers on the pinned model")
        seen = _until(lambda: _answers_by_worker(url, 2), "answers from both workers")
        assert set(seen.values()) == {first}, seen
        assert requests.get(f"{url}/models/pin", timeout=10).json()["pinned"] == first
        assert requests.get(f"{url}/models", timeout=10).json()["following"] == "pin"

        third = _republish_changed(artifacts)  # the trainer publishes meanwhile: the pin holds
        published = os.stat(artifacts / "latest.json").st_mtime
        _until(lambda: _all_polled_since(serving, published, 2), "both workers polled after the publication")
        assert _versions_served(serving) == [first, first]
        assert requests.get(f"{url}/models", timeout=10).json()["latest"] == third

        answer = requests.delete(f"{url}/models/pin", headers=ADMIN, timeout=30)
        assert answer.status_code == 200 and answer.json()["was"] == first and answer.json()["latest"] == third
        _until(lambda: _versions_served(serving) == [third, third], "both workers back on latest.json")
        assert not pin_file(serving).exists()
        again = requests.delete(f"{url}/models/pin", headers=ADMIN, timeout=30).json()
        assert again["was"] is None and again["detail"] == "nothing was pinned"

        pin_file(serving).write_text("{ half a record")  # damaged by hand: every worker keeps what it serves
        damaged_at = time.time()
        _until(lambda: _all_polled_since(serving, damaged_at, 2), "both workers polled the damaged pin")
        assert _versions_served(serving) == [third, third]
        assert "is not a pin record" in requests.get(f"{url}/models", timeout=10).json()["pin_error"]


def _answers_by_worker(url: str, workers: int) -> dict[str, str] | None:
    """X-Model-Version by X-Served-By-Worker over new connections, once every worker has answered."""
    seen = {}
    for _ in range(20):
        answer = requests.get(f"{url}/ready", timeout=10)
        seen[answer.headers["X-Served-By-Worker"]] = answer.headers["X-Model-Version"]
    return seen if len(seen) == workers else None


def test_a_pin_to_a_missing_or_broken_model_is_refused_and_the_old_one_keeps_serving(two_models, tmp_path):
    artifacts, serving, _first, second = two_models
    broken = "20990101-000000-deadbeef"
    (artifacts / "models" / f"{broken}.pt").write_bytes(b"not a checkpoint" * 64)
    with _serve(tmp_path, ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=tmp_path / "none", DATA_DIR=tmp_path / "none",
                SERVING_DIR=serving, ADMIN_TOKEN=TOKEN) as server:
        url = server.url
        missing = requests.post(f"{url}/models/20990101-000000-00000000/pin", headers=ADMIN, timeout=10)
        assert missing.status_code == 404 and missing.json()["error"] == "model_not_found"
        assert "GET /models lists them" in missing.json()["detail"]
        for sneaky in ("..%2Flatest", "%2E%2E", "latest.json"):
            assert requests.post(f"{url}/models/{sneaky}/pin", headers=ADMIN, timeout=10).status_code == 404
        refused = requests.post(f"{url}/models/{broken}/pin", headers=ADMIN, timeout=30)
        assert refused.status_code == 422 and refused.json()["error"] == "model_unloadable", refused.text
        detail = refused.json()["detail"]
        assert "not a readable checkpoint" in detail and detail.endswith(f"still serving {second}")
        assert str(tmp_path) not in detail, "no server path in answers"
        assert not pin_file(serving).exists()
        assert requests.get(f"{url}/ready", timeout=10).json()["model_version"] == second
        assert requests.get(f"{url}/models", timeout=10).json()["pinned"] is None

        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}):
            for method, path in (("POST", f"/models/{second}/pin"), ("DELETE", "/models/pin")):
                answer = requests.request(method, f"{url}{path}", headers=headers, timeout=10)
                assert answer.status_code == 403 and answer.json()["error"] == "admin_token_required", headers
        assert requests.get(f"{url}/models/{broken}", timeout=10).json()["model"]["test_accuracy"] is None
        assert requests.get(f"{url}/models/nothing-like-it", timeout=10).status_code == 404


def test_management_is_off_without_admin_token_and_pinning_needs_serving_dir(two_models, tmp_path):
    artifacts, _serving, first, _second = two_models
    with _serve(tmp_path, ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=tmp_path / "none", DATA_DIR=tmp_path / "none",
                ADMIN_TOKEN="") as server:
        url = server.url
        for method, path in (("POST", f"/models/{first}/pin"), ("DELETE", "/models/pin")):
            answer = requests.request(method, f"{url}{path}", headers=ADMIN, timeout=10)
            assert answer.status_code == 403 and answer.json()["error"] == "management_disabled"
        assert requests.get(f"{url}/models", timeout=10).status_code == 200, "reading is not management"
    with _serve(tmp_path, ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=tmp_path / "none", DATA_DIR=tmp_path / "none",
                ADMIN_TOKEN=TOKEN) as server:  # no SERVING_DIR: nowhere every process could read a pin
        url = server.url
        for method, path in (("POST", f"/models/{first}/pin"), ("DELETE", "/models/pin")):
            answer = requests.request(method, f"{url}{path}", headers=ADMIN, timeout=10)
            assert answer.status_code == 409 and answer.json()["error"] == "pinning_unavailable"
            assert "SERVING_DIR" in answer.json()["detail"]
        listing = requests.get(f"{url}/models", timeout=10).json()
        assert listing["pinned"] is None and listing["pin_error"] is None
