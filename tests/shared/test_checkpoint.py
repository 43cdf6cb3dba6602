import json
from datetime import datetime

import numpy as np
import pytest
import torch

from shared.artifacts import publish_model, read_manifest
from shared.checkpoint import (
    CheckpointError,
    build_checkpoint,
    load_checkpoint,
    make_model_version,
    save_checkpoint,
)
from shared.model import FashionMNISTModelV2
from shared.onnx_export import graph_path
from shared.preprocess import pixels_to_batch


def make_checkpoint() -> dict:
    return build_checkpoint(FashionMNISTModelV2(), hyperparameters={"lr": 0.1}, epoch=3, metrics={"acc": 0.5})


def test_checkpoint_round_trips_with_weights_only(tmp_path):
    checkpoint = make_checkpoint()
    save_checkpoint(tmp_path / "model.pt", checkpoint)
    data = torch.load(tmp_path / "model.pt", weights_only=True)
    for key in ("state_dict", "model_config", "class_names", "hyperparameters", "epoch", "optimizer_state",
                "scheduler_state", "metrics", "model_version", "created_at", "architecture"):
        assert key in data
    loaded = load_checkpoint(tmp_path / "model.pt")
    assert loaded.model_version == checkpoint["model_version"]
    model = loaded.build_model()
    assert not model.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, checkpoint["state_dict"][name])
    assert list(tmp_path.iterdir()) == [tmp_path / "model.pt"]  # no temporary file left behind


def test_corrupt_truncated_and_foreign_files_are_rejected(tmp_path):
    save_checkpoint(tmp_path / "good.pt", make_checkpoint())
    good = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(good[: len(good) // 2])
    (tmp_path / "corrupt.pt").write_bytes(b"\x00garbage" * 100)
    torch.save(FashionMNISTModelV2().state_dict(), tmp_path / "foreign.pt")
    wrong_arch = make_checkpoint()
    wrong_arch["state_dict"]["classifier.1.weight"] = torch.zeros(10, 5)
    save_checkpoint(tmp_path / "wrong_shape.pt", wrong_arch)
    for name, expected in [("truncated", "corrupt or truncated"), ("corrupt", "corrupt or truncated"),
                           ("foreign", "foreign"), ("missing", "no such")]:
        with pytest.raises(CheckpointError, match=expected):
            load_checkpoint(tmp_path / f"{name}.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "wrong_shape.pt").build_model()


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    save_checkpoint(tmp_path / "model.pt", make_checkpoint())
    before = (tmp_path / "model.pt").read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - any pickling error will do
        save_checkpoint(tmp_path / "model.pt", {"not serialisable": lambda: None})
    assert (tmp_path / "model.pt").read_bytes() == before


def test_publish_writes_checkpoint_and_metrics_before_the_manifest(tmp_path):
    checkpoint = make_checkpoint()
    published = publish_model(tmp_path, checkpoint, {"test_accuracy": 0.9})
    assert read_manifest(tmp_path) == published
    assert published.checkpoint_path.is_file()
    assert json.loads(published.metrics_path.read_text()) == {"test_accuracy": 0.9}
    assert load_checkpoint(published.checkpoint_path).model_version == published.model_version
    assert read_manifest(tmp_path / "nowhere") is None


def test_publish_writes_an_onnx_graph_that_answers_the_checkpoints_logits(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")  # the inference service's dependency, not the trainer's
    published = publish_model(tmp_path, make_checkpoint(), {"test_accuracy": 0.9})
    graph = graph_path(published.checkpoint_path)
    assert graph == published.checkpoint_path.with_suffix(".onnx") and graph.is_file()
    assert not [path for path in graph.parent.iterdir() if path.name.startswith(".")]  # no temporary file left
    pixels = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"pixels": pixels})
    with torch.inference_mode():
        expected = load_checkpoint(published.checkpoint_path).build_model()(pixels_to_batch(torch.from_numpy(pixels)))
    assert logits.shape == (5, 10)
    np.testing.assert_allclose(logits, expected.numpy(), atol=1e-4)


def test_the_temperature_is_stored_and_is_part_of_the_version(tmp_path):
    model = FashionMNISTModelV2()
    plain = build_checkpoint(model, hyperparameters={}, epoch=1, metrics={})
    calibrated = build_checkpoint(model, hyperparameters={}, epoch=1, metrics={}, temperature=0.6)
    assert "temperature" not in plain and calibrated["temperature"] == 0.6
    same_time = datetime.fromisoformat(calibrated["created_at"])
    versions = {make_model_version(calibrated["state_dict"], same_time, temperature)
                for temperature in (None, 0.6, 0.61)}
    assert len(versions) == 3  # the same weights recalibrated are a new version
    assert calibrated["model_version"] == make_model_version(calibrated["state_dict"], same_time, 0.6)
    save_checkpoint(tmp_path / "calibrated.pt", calibrated)
    loaded = load_checkpoint(tmp_path / "calibrated.pt")
    assert loaded.calibrated and loaded.temperature == 0.6


def test_a_checkpoint_from_before_calibration_loads_with_temperature_one(tmp_path):
    save_checkpoint(tmp_path / "old.pt", make_checkpoint())
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert not loaded.calibrated and loaded.temperature == 1.0


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf"), "0.5", 1])
def test_a_bad_temperature_is_refused(tmp_path, temperature):
    checkpoint = make_checkpoint()
    checkpoint["temperature"] = temperature
    save_checkpoint(tmp_path / "bad.pt", checkpoint)
    with pytest.raises(CheckpointError, match="temperature"):
        load_checkpoint(tmp_path / "bad.pt")
