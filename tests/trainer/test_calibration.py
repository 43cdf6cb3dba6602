"""Fitting the temperature, and the command that gives a published model its temperature without retraining."""

import json
import shutil

import numpy as np
import pytest
import torch

from services.trainer.fit_temperature import fit_temperature
from services.trainer.recalibrate import main, recalibrate
from shared.artifacts import publish_model, read_manifest
from shared.calibration_measures import expected_calibration_error
from shared.checkpoint import load_checkpoint


def sampled(temperature: float, n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits / temperature): the right T is ``temperature``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n, 10))
    probabilities = torch.softmax(torch.from_numpy(logits / temperature), dim=1).numpy()
    labels = (probabilities.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return logits, labels


@pytest.mark.parametrize("true_temperature", [0.6, 1.0, 2.5])
def test_fit_recovers_the_temperature_that_made_the_labels(true_temperature):
    logits, labels = sampled(true_temperature)
    assert fit_temperature(logits, labels) == pytest.approx(true_temperature, rel=0.05)


def test_over_confident_logits_get_t_above_one_and_under_confident_below():
    logits, labels = sampled(1.0)
    assert fit_temperature(logits * 3, labels) > 1.5  # over-confident: soften
    assert fit_temperature(logits / 3, labels) < 0.7  # under-confident (like label smoothing): sharpen


def test_fitting_lowers_the_ece_and_is_deterministic():
    logits, labels = sampled(1.0)
    under = logits / 2
    temperature = fit_temperature(under, labels)
    assert temperature == fit_temperature(under, labels)
    before = torch.softmax(torch.from_numpy(under), dim=1).numpy()
    after = torch.softmax(torch.from_numpy(under / temperature), dim=1).numpy()
    assert expected_calibration_error(after, labels) < expected_calibration_error(before, labels) / 3


def uncalibrated_copy(tiny_artifacts, target):
    """The tiny model published as a checkpoint from before calibration (no temperature, no calibration block)."""
    published = read_manifest(tiny_artifacts)
    data = dict(load_checkpoint(published.checkpoint_path).data)
    data.pop("temperature")
    data["model_version"] = "20260101-000000-oldmodel"
    metrics = json.loads(published.metrics_path.read_text())
    metrics.pop("calibration")
    publish_model(target, data, {**metrics, "model_version": data["model_version"]})
    (target / "metrics.json").unlink()
    return data


def test_recalibrate_republishes_the_same_weights_with_a_temperature(tiny_artifacts, tiny_data_dir, tmp_path):
    target = tmp_path / "default"
    old = uncalibrated_copy(tiny_artifacts, target)
    assert main(["--model-dir", str(target), "--data-dir", str(tiny_data_dir)]) == 0
    published = read_manifest(target)
    assert published.model_version != old["model_version"]
    assert sorted(path.name for path in (target / "models").iterdir()) == [
        f"{published.model_version}.graph.json", f"{published.model_version}.metrics.json",
        f"{published.model_version}.onnx", f"{published.model_version}.pt"]  # one model, all its files
    assert sorted(path.name for path in target.iterdir()) == ["latest.json", "models"]
    checkpoint = load_checkpoint(published.checkpoint_path)
    assert checkpoint.calibrated and checkpoint.temperature > 0
    for name, tensor in old["state_dict"].items():
        assert torch.equal(checkpoint.data["state_dict"][name], tensor)
    metrics = json.loads(published.metrics_path.read_text())
    calibration = metrics["calibration"]
    assert calibration["temperature"] == checkpoint.temperature and metrics["model_version"] == published.model_version
    assert "SPLIT_SEED=42" in calibration["fitted_by"] and calibration["fitted_on"] == "validation split (100 images)"
    trained = json.loads(read_manifest(tiny_artifacts).metrics_path.read_text())["calibration"]
    assert calibration["temperature"] == pytest.approx(trained["temperature"])  # the split the trainer used

    again = recalibrate(target, tiny_data_dir)  # a second run changes nothing
    assert again[0] == again[1] == read_manifest(target)


def test_recalibrate_refuses_other_data_and_missing_models(tiny_artifacts, tiny_data_dir, tmp_path):
    assert main(["--model-dir", str(tmp_path / "nothing"), "--data-dir", str(tiny_data_dir)]) == 2
    target = tmp_path / "default"
    uncalibrated_copy(tiny_artifacts, target)
    other = tmp_path / "other-data"
    shutil.copytree(tiny_data_dir, other)
    raw = other / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    data = bytearray(raw.read_bytes())
    data[8:] = bytes((label + 1) % 10 for label in data[8:])  # other labels: not the test set it was tested on
    raw.write_bytes(bytes(data))
    assert main(["--model-dir", str(target), "--data-dir", str(other)]) == 2
    assert read_manifest(target).model_version == "20260101-000000-oldmodel"
