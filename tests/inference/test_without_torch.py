"""The CPU image has no torch: the real server, started where `import torch` fails, serves every route.

The child process gets a ``sitecustomize`` first on its PYTHONPATH that makes every import of torch or torchvision
fail, as in the CPU image, where they are not installed. With BACKEND=auto on the CPU
it must serve the shipped model from its ONNX graph and card, answer /predict, /explain, /samples, /metrics and
/ready, switch to a newly published model, and refuse a model without its card (or graph) with a message that
says what is missing and how to add it, while the previous model keeps serving.
"""

import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import requests

from shared.artifacts import publish_model, read_manifest
from shared.checkpoint import build_checkpoint, load_checkpoint
from shared.graph_card import card_path, graph_path
from shared.model import FashionMNISTModelV2
from shared.onnx_export import write_onnx
from tests.inference.helpers import encode, files
from tests.processes import python_path

BLOCKER = textwrap.dedent('''
    """Test harness: make torch unimportable in this process, as in the CPU image."""
    import importlib.abc
    import sys


    class _NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchvision"):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked: no torch in this image)", name=name)
            return None


    sys.meta_path.insert(0, _NoTorch())
''')


@pytest.fixture(scope="module")
def no_torch_env(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("no-torch")
    (folder / "sitecustomize.py").write_text(BLOCKER)
    return {"PYTHONPATH": f"{folder}:{python_path()}"}


def test_the_blocker_really_keeps_torch_out(no_torch_env):
    child = subprocess.run([sys.executable, "-c", "import torch"], env={**no_torch_env, "PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True, timeout=60)
    assert child.returncode != 0 and "blocked: no torch in this image" in child.stderr


def wait_for_version(url: str, version: str, deadline_s: float = 60.0) -> dict:
    deadline = time.monotonic() + deadline_s
    while True:
        model = requests.get(f"{url}/metrics", timeout=10).json()["model"]
        if (model or {}).get("version") == version or time.monotonic() > deadline:
            return model
        time.sleep(0.1)


def test_every_route_works_without_torch(start_server, no_torch_env, default_model_dir, tiny_data_dir, tmp_path):
    artifacts = tmp_path / "artifacts"
    shipped = read_manifest(default_model_dir)
    with start_server(ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=default_model_dir, DATA_DIR=tiny_data_dir,
                      RELOAD_INTERVAL_S="0.2", wait_for="/ready", **no_torch_env) as url:
        ready = requests.get(f"{url}/ready", timeout=10)
        assert ready.status_code == 200 and ready.json()["model_version"] == shipped.model_version
        metrics = requests.get(f"{url}/metrics", timeout=10).json()
        assert metrics["model"]["backend"] == "onnx" and metrics["model"]["device"] == "cpu"
        card_temperature = load_checkpoint(shipped.checkpoint_path).data["temperature"]
        assert metrics["model"]["calibrated"] is True and metrics["model"]["temperature"] == card_temperature
        assert metrics["training"]["test_accuracy"] > 0.9  # the model's metrics file, read without torch

        deadline = time.monotonic() + 60
        while (sample := requests.get(f"{url}/samples/3", timeout=10)).status_code == 503:  # loads in the background
            assert time.monotonic() < deadline, sample.text
            time.sleep(0.1)
        assert sample.status_code == 200 and len(sample.json()["pixels"]) == 28
        pixels = np.array(sample.json()["pixels"], dtype=np.uint8)

        predicted = requests.post(f"{url}/predict?top_k=10", files=files([encode(pixels)]), timeout=30)
        assert predicted.status_code == 200
        answer = predicted.json()
        assert answer["model_version"] == shipped.model_version
        assert abs(sum(row["probability"] for row in answer["top_k"]) - 1) < 1e-5  # the softmax, in numpy
        explained = requests.post(f"{url}/explain", files=files([encode(pixels)]), timeout=60)
        assert explained.status_code == 200 and explained.json()["class_id"] == answer["class_id"]
        assert np.array(explained.json()["saliency"]).shape == (28, 28)
        assert "inference_images_total" in requests.get(f"{url}/metrics/prometheus", timeout=10).text

        # A model published while it serves (by the trainer, which has torch: this test process) replaces it.
        model = load_checkpoint(shipped.checkpoint_path).build_model("cpu")
        new = publish_model(artifacts, build_checkpoint(model, hyperparameters={}, epoch=1, metrics={},
                                                        temperature=0.9), {"test_accuracy": 0.5})
        swapped = wait_for_version(url, new.model_version)
        assert swapped["version"] == new.model_version and swapped["temperature"] == 0.9


@pytest.mark.parametrize("missing", ["card", "graph"])
def test_a_model_without_its_card_or_graph_is_refused_and_says_why(start_server, no_torch_env, default_model_dir,
                                                                     tmp_path, missing):
    model_dir = shutil.copytree(default_model_dir, tmp_path / "model")
    checkpoint_path = read_manifest(model_dir).checkpoint_path
    (card_path if missing == "card" else graph_path)(checkpoint_path).unlink()
    with start_server(ARTIFACTS_DIR=tmp_path / "none", DEFAULT_MODEL_DIR=model_dir, **no_torch_env) as url:
        assert requests.get(f"{url}/ready", timeout=10).status_code == 503
        error = requests.get(f"{url}/metrics", timeout=10).json()["reload"]["last_error"]
        assert "this image has no torch to serve the checkpoint itself" in error
        if missing == "card":
            assert "no graph card" in error and "python -m services.trainer.cards" in error
        else:
            assert "no ONNX graph" in error
        assert requests.post(f"{url}/predict", files=files([encode(np.zeros((28, 28), np.uint8))]),
                             timeout=30).status_code == 503


def test_a_graph_that_disagrees_with_its_checkpoint_is_refused_and_counted(start_server, no_torch_env,
                                                                         default_model_dir, tmp_path):
    model_dir = shutil.copytree(default_model_dir, tmp_path / "model")
    write_onnx(FashionMNISTModelV2(), graph_path(read_manifest(model_dir).checkpoint_path))  # other weights
    with start_server(ARTIFACTS_DIR=tmp_path / "none", DEFAULT_MODEL_DIR=model_dir, **no_torch_env) as url:
        assert requests.get(f"{url}/ready", timeout=10).status_code == 503
        reload = requests.get(f"{url}/metrics", timeout=10).json()["reload"]
        assert "the ONNX graph disagrees with its checkpoint" in reload["last_error"]
        assert "this image has no torch to serve the checkpoint itself" in reload["last_error"]
        assert reload["graph_disagreements"] == 1
        exposition = requests.get(f"{url}/metrics/prometheus", timeout=10).text
        assert "inference_graph_disagreements_total 1.0" in exposition.splitlines()
