"""Readiness and hot reload against real servers: models appear, change and break while requests run."""

import gc
import json
import shutil
import threading
import weakref

import requests
import torch
from fastapi.testclient import TestClient

from services.inference.app.config import Settings
from services.inference.app.main import create_app
from shared.artifacts import MANIFEST_NAME, publish_model, read_manifest
from shared.atomic import write_json_atomic
from shared.checkpoint import build_checkpoint, load_checkpoint
from tests.waiting import wait_until

PIXELS = [[(row * 28 + col) % 256 for col in range(28)] for row in range(28)]


def _republish_changed(artifacts_dir, from_version: str | None = None) -> str:
    """Publish the current model (or ``from_version``) with slightly changed weights: a new, valid version."""
    current = read_manifest(artifacts_dir)
    checkpoint_path, metrics_path = current.checkpoint_path, current.metrics_path
    if from_version is not None:
        checkpoint_path = artifacts_dir / "models" / f"{from_version}.pt"
        metrics_path = artifacts_dir / "models" / f"{from_version}.metrics.json"
    model = load_checkpoint(checkpoint_path).build_model("cpu")
    with torch.no_grad():
        model.classifier[1].bias.add_(0.01)
    metrics = json.loads(metrics_path.read_text())
    checkpoint = build_checkpoint(model, hyperparameters={"note": "republished by a test"}, epoch=1,
                                  metrics={"test_accuracy": metrics["test_accuracy"]})
    metrics["model_version"] = checkpoint["model_version"]
    return publish_model(artifacts_dir, checkpoint, metrics).model_version


def test_not_ready_without_any_model_then_ready_once_one_is_published(start_server, tiny_artifacts, tmp_path):
    artifacts, empty_default = tmp_path / "artifacts", tmp_path / "no-default"
    artifacts.mkdir()
    empty_default.mkdir()
    with start_server(ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=empty_default, DATA_DIR=tmp_path / "no-data",
                      RELOAD_INTERVAL_S="0.2") as url:
        ready = requests.get(f"{url}/ready", timeout=5)
        assert ready.status_code == 503 and ready.json()["error"] == "not_ready"
        for route in ("/predict", "/explain"):
            answer = requests.post(f"{url}{route}", json={"pixels": PIXELS}, timeout=5)
            assert answer.status_code == 503 and answer.json()["error"] == "not_ready"
        assert requests.get(f"{url}/health", timeout=5).status_code == 200
        assert requests.get(f"{url}/metrics", timeout=5).json()["model"] is None
        samples = wait_until(lambda: (answer := requests.get(f"{url}/samples/0", timeout=5).json())["detail"] !=
                             "the test images are still loading" and answer, "the samples' loading to fail")
        assert samples["error"] == "samples_unavailable" and "DATA_DIR/FashionMNIST/raw" in samples["detail"]  # where
        assert str(tmp_path) not in samples["detail"], "no server path in answers"

        shutil.copytree(tiny_artifacts / "models", artifacts / "models")  # files first, manifest last
        shutil.copy(tiny_artifacts / MANIFEST_NAME, artifacts / MANIFEST_NAME)
        version = read_manifest(artifacts).model_version
        wait_until(lambda: requests.get(f"{url}/ready", timeout=5).status_code == 200, "ready")
        assert requests.get(f"{url}/ready", timeout=5).json() == {"status": "ready", "model_version": version}
        assert requests.post(f"{url}/predict", json={"pixels": PIXELS}, timeout=5).json()["model_version"] == version


def test_hot_reload_under_load_never_fails_a_request_and_refuses_a_corrupt_model(start_server, tiny_artifacts,
                                                                                  tmp_path):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, artifacts)
    old_version = read_manifest(artifacts).model_version
    with start_server(ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=tmp_path / "none", DATA_DIR=tmp_path / "none",
                      RELOAD_INTERVAL_S="0.2") as url:
        assert requests.get(f"{url}/metrics", timeout=5).json()["model"]["source"] == "artifacts"
        stop, failures, versions, counts = threading.Event(), [], {"/predict": set(), "/explain": set()}, [0]

        def hammer(route: str) -> None:
            with requests.Session() as session:
                while not stop.is_set():
                    try:
                        response = session.post(f"{url}{route}", json={"pixels": PIXELS}, timeout=10)
                        if response.status_code != 200:
                            failures.append(response.text)
                        else:
                            versions[route].add(response.json()["model_version"])
                    except requests.RequestException as error:
                        failures.append(repr(error))
                    counts[0] += 1

        # Explanations run in their own thread beside the micro-batcher: both keep answering through the swap.
        threads = [threading.Thread(target=hammer, args=(route,)) for route in ["/predict"] * 4 + ["/explain"]]
        for thread in threads:
            thread.start()
        try:  # the swap happens while every route is answering: before it, each has answered with the old model
            wait_until(lambda: counts[0] > 20 and all(old_version in seen for seen in versions.values()),
                       "answers from the old model on every route")
            new_version = _republish_changed(artifacts)
            assert new_version != old_version
            wait_until(lambda: all(new_version in seen for seen in versions.values()), "the new version")
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert failures == []
        assert all({old_version, new_version} <= seen for seen in versions.values()) and counts[0] > 20

        bad = artifacts / "models" / "broken.pt"
        bad.write_bytes(b"this is not a checkpoint" * 100)
        write_json_atomic(artifacts / MANIFEST_NAME, {"model_version": "broken", "checkpoint": "models/broken.pt",
                                                      "metrics": "models/broken.metrics.json"})
        reload = wait_until(lambda: requests.get(f"{url}/metrics", timeout=5).json()["reload"]["rejected"],
                            "the rejection in /metrics")
        assert reload[0]["path"] == "models/broken.pt" and "not a readable checkpoint" in reload[0]["error"]
        assert reload[0]["error"].startswith("ARTIFACTS_DIR/models/broken.pt: ") and reload[0]["at"]
        metrics = requests.get(f"{url}/metrics", timeout=5).json()
        assert metrics["model"]["version"] == new_version and metrics["reload"]["last_error"]
        assert metrics["model"]["checkpoint"] == f"models/{new_version}.pt"
        assert str(tmp_path) not in requests.get(f"{url}/metrics", timeout=5).text, "no server path in answers"
        answer = requests.post(f"{url}/predict", json={"pixels": PIXELS}, timeout=5)
        assert answer.status_code == 200 and answer.json()["model_version"] == new_version
        assert requests.get(f"{url}/ready", timeout=5).json()["model_version"] == new_version
        prometheus = requests.get(f"{url}/metrics/prometheus", timeout=5).text
        assert 'inference_model_reloads_total{outcome="rejected"} 1.0' in prometheus
        assert f'inference_model_info{{device="cpu",source="artifacts",version="{new_version}"}} 1.0' in prometheus

        # A good publication after it: the error is over (last_error clears), the history stays.
        fixed_version = _republish_changed(artifacts, from_version=new_version)
        wait_until(lambda: requests.get(f"{url}/ready", timeout=5).json()["model_version"] == fixed_version,
                   "the good model after the broken one")
        reload = requests.get(f"{url}/metrics", timeout=5).json()["reload"]
        assert reload["last_error"] is None and [entry["path"] for entry in reload["rejected"]] == ["models/broken.pt"]


def test_swapped_out_models_are_freed(tiny_artifacts, tmp_path):
    """Exact where memory figures are noisy (tests/reliability/test_model_swaps.py): after swaps with predictions
    and explanations on every model, only the serving model, with its ONNX Runtime session, is left in the process."""
    artifacts = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, artifacts)
    settings = Settings(artifacts_dir=artifacts, default_model_dir=tmp_path / "none", data_dir=tmp_path / "none",
                        download=False, device="cpu", reload_interval_s=0.1, threads=1)
    served = []
    with TestClient(create_app(settings)) as client:
        store = client.app.state.serving.store
        for _ in range(5):
            version = _republish_changed(artifacts)
            wait_until(lambda version=version: store.current.version == version, f"{version} to be served")
            for route in ("/predict", "/explain"):
                assert client.post(route, json={"pixels": PIXELS}).json()["model_version"] == version
            served.append((weakref.ref(store.current), weakref.ref(store.current.backend)))
        gc.collect()
        alive = [(model() is not None, backend() is not None) for model, backend in served]
        assert alive == [(False, False)] * 4 + [(True, True)]
