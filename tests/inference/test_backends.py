"""ONNX Runtime and PyTorch serve the same model: which one serves, when a graph is refused, and parity.

In-process (``ModelStore`` loads real published files) and through real servers; the parity over the 10,000 real
test images is ``python -m bench onnx_parity``.
"""

import shutil

import numpy as np
import pytest
import requests
import torch

from services.inference.app.classify import predict_probabilities
from services.inference.app.model_store import ModelStore
from shared.artifacts import publish_model, read_manifest
from shared.checkpoint import build_checkpoint, load_checkpoint
from shared.model import FashionMNISTModelV2
from shared.onnx_export import graph_path, write_onnx
from tests.inference.helpers import encode, files
from tests.waiting import wait_until

CPU = torch.device("cpu")


def generated_images(count: int = 2000) -> np.ndarray:
    """Noise, blobs and gradients: inputs far from and near to the training images, made by the test."""
    rng = np.random.default_rng(11)
    noise = rng.integers(0, 256, (count // 2, 28, 28), dtype=np.uint8)
    rows, cols = np.mgrid[:28, :28]
    blobs = []
    for _ in range(count - len(noise)):
        cy, cx, ry, rx = rng.uniform(8, 20), rng.uniform(8, 20), rng.uniform(3, 12), rng.uniform(3, 12)
        inside = ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1
        blobs.append(np.where(inside, rng.integers(60, 256), 0).astype(np.uint8))
    return np.concatenate([noise, np.stack(blobs)])


@pytest.fixture
def published(tmp_path, default_model_dir):
    """A copy of the default model (checkpoint, graph, metrics, manifest) that a test may change."""
    target = tmp_path / "model"
    shutil.copytree(default_model_dir, target)
    return target


def store_for(model_dir, backend: str) -> ModelStore:
    store = ModelStore(model_dir.parent / "no-artifacts", model_dir, CPU, backend=backend, threads=1)
    store.poll()
    return store


def test_auto_serves_the_graph_on_the_cpu_and_torch_when_asked(published):
    assert store_for(published, "auto").current.backend.name == "onnx"
    assert store_for(published, "onnx").current.backend.name == "onnx"
    assert store_for(published, "torch").current.backend.name == "torch"


def test_both_backends_agree_on_generated_images(published):
    images = generated_images()
    onnx, eager = store_for(published, "onnx").current, store_for(published, "torch").current
    assert onnx.temperature == eager.temperature and onnx.version == eager.version
    ours = predict_probabilities(onnx.backend, images, onnx.temperature)
    theirs = predict_probabilities(eager.backend, images, eager.temperature)
    assert ours.shape == (len(images), 10) and ours.dtype == np.float32
    assert np.array_equal(ours.argmax(axis=1), theirs.argmax(axis=1))
    assert float(np.abs(ours - theirs).max()) < 1e-4


def test_without_a_graph_auto_serves_torch_and_onnx_refuses_the_model(published):
    graph_path(read_manifest(published).checkpoint_path).unlink()
    assert store_for(published, "auto").current.backend.name == "torch"
    refusing = store_for(published, "onnx")
    assert refusing.current is None and "no ONNX graph" in refusing.reload.last_error


def test_a_graph_of_other_weights_never_serves_under_this_checkpoint(published):
    checkpoint_path = read_manifest(published).checkpoint_path
    write_onnx(FashionMNISTModelV2(), graph_path(checkpoint_path))  # untrained weights: a stale graph
    falling_back = store_for(published, "auto")
    assert falling_back.current.backend.name == "torch" and falling_back.reload.graph_disagreements == 1
    assert falling_back.current.graph_disagreement.endswith("; serving torch")
    refusing = store_for(published, "onnx")
    assert "disagrees" in refusing.reload.last_error and refusing.reload.graph_disagreements == 1


def test_a_graph_that_agrees_is_not_counted(published):
    store = store_for(published, "auto")
    assert store.current.graph_disagreement is None and store.reload.graph_disagreements == 0


def test_a_server_whose_graph_disagrees_serves_torch_and_says_so_loudly(start_server, tmp_path, published):
    """A published graph that disagrees with its checkpoint is a broken release: torch serves, and /ready, /metrics and
    Prometheus say why, until a good model replaces it (the count stays)."""
    checkpoint_path = read_manifest(published).checkpoint_path
    write_onnx(FashionMNISTModelV2(), graph_path(checkpoint_path))  # other weights than the checkpoint's
    artifacts = tmp_path / "artifacts"
    with start_server(ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=published, RELOAD_INTERVAL_S="0.2") as url:
        ready = requests.get(f"{url}/ready", timeout=10)
        assert ready.status_code == 200
        detail = ready.json()
        assert detail["status"] == "ready" and detail["backend"] == "torch"
        assert detail["graph"].startswith("the ONNX graph disagrees with its checkpoint (logits differ by ")
        assert detail["graph"].endswith("; serving torch")
        metrics = requests.get(f"{url}/metrics", timeout=10).json()
        assert metrics["model"]["backend"] == "torch" and metrics["model"]["graph_disagreement"] == detail["graph"]
        assert metrics["reload"]["graph_disagreements"] == 1
        exposition = requests.get(f"{url}/metrics/prometheus", timeout=10).text
        assert "inference_graph_disagreements_total 1.0" in exposition.splitlines()
        predicted = requests.post(f"{url}/predict", files=files([encode(generated_images(2)[0])]), timeout=30)
        assert predicted.status_code == 200  # it serves, with torch

        model = load_checkpoint(checkpoint_path).build_model("cpu")
        good = publish_model(artifacts, build_checkpoint(model, hyperparameters={}, epoch=1, metrics={}), {})
        wait_until(lambda: requests.get(f"{url}/ready", timeout=10).json()["model_version"] == good.model_version,
                   "the good model")
        assert requests.get(f"{url}/ready", timeout=10).json() == {"status": "ready",
                                                                    "model_version": good.model_version}
        metrics = requests.get(f"{url}/metrics", timeout=10).json()
        assert metrics["model"]["backend"] == "onnx" and metrics["model"]["graph_disagreement"] is None
        assert metrics["reload"]["graph_disagreements"] == 1


def test_a_corrupt_graph_falls_back_to_torch(published):
    graph_path(read_manifest(published).checkpoint_path).write_bytes(b"not a graph")
    assert store_for(published, "auto").current.backend.name == "torch"


def test_servers_on_either_backend_answer_the_same_and_say_which_runs(start_server, default_model_dir, tmp_path):
    images = generated_images(64)
    answers, explained = {}, {}
    for backend in ("onnx", "torch"):
        with start_server(ARTIFACTS_DIR=tmp_path / "none", DEFAULT_MODEL_DIR=default_model_dir,
                          BACKEND=backend, THREADS="1") as url:
            assert requests.get(f"{url}/metrics", timeout=10).json()["model"]["backend"] == backend
            response = requests.post(f"{url}/predict?top_k=10", files=files([encode(image) for image in images]),
                                     timeout=30)
            assert response.status_code == 200
            answers[backend] = response.json()["predictions"]
            explanation = requests.post(f"{url}/explain", files=files([encode(images[-1])]), timeout=30)
            assert explanation.status_code == 200
            explained[backend] = explanation.json()
            assert "inference_batch_size" in requests.get(f"{url}/metrics/prometheus", timeout=10).text
    assert explained["onnx"]["class_id"] == explained["torch"]["class_id"]
    assert np.abs(np.array(explained["onnx"]["saliency"]) - np.array(explained["torch"]["saliency"])).max() < 1e-3
    for ours, theirs in zip(answers["onnx"], answers["torch"], strict=True):
        assert ours["class_id"] == theirs["class_id"]
        probabilities = {row["class_id"]: row["probability"] for row in theirs["top_k"]}
        assert max(abs(row["probability"] - probabilities[row["class_id"]]) for row in ours["top_k"]) < 1e-4


def test_a_hot_swapped_model_serves_with_its_own_graph(start_server, tmp_path, published):
    artifacts = tmp_path / "artifacts"
    model = load_checkpoint(read_manifest(published).checkpoint_path).build_model("cpu")
    publish_model(artifacts, build_checkpoint(model, hyperparameters={}, epoch=1, metrics={}, temperature=0.8), {})
    with start_server(ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=published, RELOAD_INTERVAL_S="0.2") as url:
        first = requests.get(f"{url}/metrics", timeout=10).json()["model"]
        assert first["backend"] == "onnx" and first["temperature"] == 0.8
        with torch.no_grad():
            model.classifier[1].bias.add_(0.5)
        new = publish_model(artifacts, build_checkpoint(model, hyperparameters={}, epoch=2, metrics={}), {})
        model_info = wait_until(lambda: (info := requests.get(f"{url}/metrics", timeout=10).json()["model"])[
            "version"] == new.model_version and info, "the new model")
        assert model_info["backend"] == "onnx"
        assert model_info["temperature"] == 1.0 and model_info["calibrated"] is False
