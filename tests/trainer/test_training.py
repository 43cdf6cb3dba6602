"""The trainer end to end on tiny IDX data: artifacts, metrics, determinism, resume, signals, publishing."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from services.trainer.config import TrainSettings
from services.trainer.loop import train_one_epoch
from services.trainer.optimizer import make_optimizer
from services.trainer.signals import StopFlag, StopRequested
from services.trainer.splits import load_data
from services.trainer.train import run
from shared.artifacts import read_manifest, run_dir
from shared.checkpoint import load_checkpoint
from shared.model import FashionMNISTModelV2
from tests.conftest import tiny_settings
from tests.processes import REPO_ROOT

METRICS_KEYS = {
    "architecture", "dataset_sizes", "parameters", "weights_size_bytes", "device", "optimizer", "loss_function",
    "learning_rate", "lr_schedule", "epochs", "batch_size", "best_epoch", "final_train_loss", "final_val_loss",
    "val_accuracy", "test_loss", "test_accuracy", "macro_precision", "macro_recall", "macro_f1", "per_class",
    "confusion_matrix", "history", "training_seconds", "model_version", "created_at", "calibration",
}
TIMING_KEYS = {"seconds", "training_seconds", "model_version", "created_at"}


def without_timings(metrics: dict) -> dict:
    clean = {key: value for key, value in metrics.items() if key not in TIMING_KEYS}
    clean["history"] = [{k: v for k, v in epoch.items() if k not in TIMING_KEYS} for epoch in metrics["history"]]
    return clean


def trainer_process(data_dir, artifacts_dir, *flags: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "services.trainer", "--data-dir", str(data_dir), "--artifacts-dir",
               str(artifacts_dir), "--no-download", "--val-size", "100", "--seed", "7", "--device", "cpu",
               "--num-threads", "1", *flags]
    return subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_training_writes_checkpoints_manifest_and_every_metric(tiny_artifacts):
    metrics = json.loads((tiny_artifacts / "metrics.json").read_text())
    assert metrics.keys() >= METRICS_KEYS
    assert metrics["dataset_sizes"] == {"train": 500, "val": 100, "test": 200}
    assert metrics["parameters"] == 43_754 and metrics["batch_size"] == 128 and metrics["epochs"] == 2
    assert len(metrics["history"]) == 2
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"} <= metrics["history"][0].keys()
    assert len(metrics["per_class"]) == 10 and metrics["per_class"][9]["label"] == "Ankle boot"
    matrix = metrics["confusion_matrix"]
    assert len(matrix) == 10 and all(len(row) == 10 for row in matrix) and sum(map(sum, matrix)) == 200
    assert 0 <= metrics["macro_f1"] <= 1 and 0 <= metrics["test_accuracy"] <= 1

    published = read_manifest(tiny_artifacts)
    assert published is not None and published.model_version == metrics["model_version"]
    checkpoint = load_checkpoint(published.checkpoint_path)
    assert checkpoint.data["epoch"] == metrics["best_epoch"]
    assert json.loads(published.metrics_path.read_text()) == metrics
    assert checkpoint.calibrated and checkpoint.temperature == metrics["calibration"]["temperature"]
    last = torch.load(run_dir(tiny_artifacts) / "last.pt", weights_only=True)
    assert last["completed"] and last["optimizer_state"] and last["scheduler_state"] and last["epoch"] == 2
    assert (run_dir(tiny_artifacts) / "best.pt").is_file()


def test_publishing_fits_a_temperature_and_reports_calibration(tiny_artifacts):
    metrics = json.loads((tiny_artifacts / "metrics.json").read_text())
    calibration = metrics["calibration"]
    assert calibration["method"] == "temperature scaling" and calibration["bins"] == 15
    assert calibration["fitted_on"] == "validation split (100 images)" and "L-BFGS" in calibration["fit"]
    assert 0.05 <= calibration["temperature"] <= 20
    assert calibration["validation_nll"]["after"] <= calibration["validation_nll"]["before"] + 1e-12  # NLL minimised
    for when in ("before", "after"):
        summary = calibration["test"][when]
        assert summary["accuracy"] == metrics["test_accuracy"] and summary["images"] == 200  # T never changes a class
        assert 0 <= summary["ece"] <= 1 and 0 < summary["mean_confidence"] <= 1
        assert sum(row["count"] for row in summary["reliability"]) == 200 and len(summary["reliability"]) == 15
    assert calibration["test"]["before"]["nll"] == pytest.approx(metrics["test_loss"], rel=1e-4)
    assert not torch.load(run_dir(tiny_artifacts) / "best.pt", weights_only=True).get("temperature")


def test_same_seed_gives_identical_metrics(tiny_data_dir, tiny_artifacts, tmp_path):
    assert run(tiny_settings(tiny_data_dir, tmp_path), StopFlag()) == 0
    again = json.loads((tmp_path / "metrics.json").read_text())
    first = json.loads((tiny_artifacts / "metrics.json").read_text())
    assert without_timings(again) == without_timings(first)


def test_finished_settings_are_not_retrained_unless_asked(tiny_data_dir, tiny_artifacts, tmp_path):
    settings = tiny_settings(tiny_data_dir, tiny_artifacts)
    version = read_manifest(tiny_artifacts).model_version
    assert run(settings, StopFlag()) == 0
    assert read_manifest(tiny_artifacts).model_version == version


def test_a_killed_run_resumes_and_matches_an_uninterrupted_one(tiny_data_dir, tmp_path):
    epochs = ["--epochs", "8"]
    process = trainer_process(tiny_data_dir, tmp_path / "killed", *epochs)
    last = run_dir(tmp_path / "killed") / "last.pt"
    while not last.exists():
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)  # after its first epoch of 8: the other 7 are the margin, on any machine
    process.wait()
    interrupted_at = torch.load(last, weights_only=True)["epoch"]
    assert interrupted_at < 8
    assert read_manifest(tmp_path / "killed") is None

    resumed = trainer_process(tiny_data_dir, tmp_path / "killed", *epochs)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert f"resuming after epoch {interrupted_at} of 8" in output
    straight = trainer_process(tiny_data_dir, tmp_path / "straight", *epochs)
    straight.communicate(timeout=600)
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("killed", "straight")]
    assert without_timings(metrics[0]) == without_timings(metrics[1])


class StopAfter:
    """A stop flag that says "stop" from its (steps + 1)-th reading on: asked while batch ``steps`` trains."""

    def __init__(self, steps: int) -> None:
        self.steps, self.readings = steps, 0

    @property
    def requested(self) -> bool:
        self.readings += 1
        return self.readings > self.steps


def test_a_stop_request_ends_the_epoch_after_the_batch_in_progress(tiny_data_dir, tmp_path):
    """What "promptly" means, counted instead of timed: the request is read before every step, so the epoch ends
    after the batch that was training when it came (SIGTERM sets the flag: the next test)."""
    settings = tiny_settings(tiny_data_dir, tmp_path)
    train, _, _ = load_data(settings)
    model = FashionMNISTModelV2()
    optimizer, scheduler, _ = make_optimizer(model, settings, steps_per_epoch=4)
    with pytest.raises(StopRequested):
        train_one_epoch(model, optimizer, scheduler, train, settings, 1, StopAfter(2))
    assert {int(state["step"]) for state in optimizer.state.values()} == {2}  # of the epoch's 4 batches


def test_sigterm_stops_the_run_cleanly_and_it_resumes(tiny_data_dir, tmp_path):
    process = trainer_process(tiny_data_dir, tmp_path, "--epochs", "40")
    last = run_dir(tmp_path) / "last.pt"
    while not last.exists():
        assert process.poll() is None
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)  # 39 epochs before the end: it stops in the middle
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 128 + signal.SIGTERM, output
    assert "received SIGTERM: stopping after the current batch" in output
    assert "run again with the same settings to resume" in output
    stopped_at = torch.load(last, weights_only=True)["epoch"]
    assert 1 <= stopped_at < 40
    assert run(tiny_settings(tiny_data_dir, tmp_path, epochs=40), StopFlag()) == 0
    assert len(json.loads((tmp_path / "metrics.json").read_text())["history"]) == 40


def test_a_reader_polling_the_manifest_never_meets_a_partial_or_deleted_checkpoint(tiny_data_dir, tmp_path):
    """Three publications with KEEP_MODELS=2: retention deletes the oldest meanwhile, never what the manifest names."""
    seen, failures, done = set(), [], threading.Event()

    def poll() -> None:
        while not done.is_set():
            published = read_manifest(tmp_path)
            if published is not None:
                try:
                    seen.add(load_checkpoint(published.checkpoint_path).model_version)
                    json.loads(published.metrics_path.read_text())
                except Exception as error:  # any failure here is what the test is looking for
                    failures.append(repr(error))

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for seed in (1, 2, 3):  # PUBLISH_IF=always: each one moves the manifest, whatever its accuracy
            assert run(tiny_settings(tiny_data_dir, tmp_path, seed=seed, epochs=1, keep_models=2,
                                     publish_if="always"), StopFlag()) == 0
    finally:
        done.set()
        reader.join()
    assert failures == []
    assert len(seen) >= 2
    kept = sorted(path.name for path in (tmp_path / "models").iterdir())
    # 2 models: each a checkpoint, its ONNX graph, the graph's card and its metrics
    assert len(kept) == 8 and f"{read_manifest(tmp_path).model_version}.pt" in kept, kept


def test_missing_data_fails_with_a_clear_message(tmp_path):
    process = trainer_process(tmp_path / "no-data", tmp_path / "artifacts", "--epochs", "1")
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 2
    assert "FashionMNIST not found in" in output and "train-images-idx3-ubyte" in output
    assert "Traceback" not in output
    assert json.loads((tmp_path / "artifacts" / "training.json").read_text())["state"] == "failed"


def test_settings_come_from_environment_and_flags(monkeypatch):
    monkeypatch.setenv("EPOCHS", "7")
    monkeypatch.setenv("DEVICE", "cpu")
    settings = TrainSettings(_cli_parse_args=["--batch-size", "64"])
    assert (settings.epochs, settings.batch_size, settings.device) == (7, 64, "cpu")
    assert TrainSettings(_cli_parse_args=["--epochs", "3"]).epochs == 3


def test_one_epoch_on_real_data_learns(real_data_dir, tmp_path):
    settings = TrainSettings(data_dir=real_data_dir, artifacts_dir=tmp_path, download=False, epochs=1,
                             train_limit=8000, val_size=2000, device="cpu", lr=0.005, max_shift=0,
                             label_smoothing=0.0, num_threads=1)
    assert run(settings, StopFlag()) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["val_accuracy"] > 0.70
    assert metrics["dataset_sizes"] == {"train": 8000, "val": 2000, "test": 10000}


def test_precision_setting_is_applied_and_recorded(tiny_data_dir, tmp_path):
    assert run(tiny_settings(tiny_data_dir, tmp_path, epochs=1, precision="fp32"), StopFlag()) == 0
    assert json.loads((tmp_path / "metrics.json").read_text())["precision"] == "fp32"
    assert run(tiny_settings(tiny_data_dir, tmp_path, epochs=1, precision="bf16"), StopFlag()) == 0
    assert json.loads((tmp_path / "metrics.json").read_text())["precision"] == "bf16 autocast, fp32 weights"


def test_the_record_names_the_schedule_optimizer_and_augmentation_the_run_used(tiny_data_dir, tiny_artifacts,
                                                                                 tmp_path):
    """A run of 2 steps is too short to cycle: its record says LambdaLR (the class last.pt's scheduler state belongs
    to), a longer one OneCycleLR with the parameters it was built with, its defaults included."""
    short = tiny_settings(tiny_data_dir, tmp_path, epochs=1, batch_size=256, max_shift=0)  # 500 images: 2 steps
    assert run(short, StopFlag()) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["lr_schedule"] == "LambdaLR (lr_lambda=constant_rate), stepped per batch"
    assert "lr_lambdas" in torch.load(run_dir(tmp_path) / "last.pt", weights_only=True)["scheduler_state"]
    assert metrics["augmentation"] == "random horizontal flip (p=0.5)"  # MAX_SHIFT=0: no shift at all
    assert metrics["optimizer"].startswith("AdamW (lr=0.003, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0001, ")

    cycled = json.loads((tiny_artifacts / "metrics.json").read_text())  # 2 epochs of 4 steps
    assert cycled["lr_schedule"] == (
        "OneCycleLR (max_lr=0.003, total_steps=8, pct_start=0.25, anneal_strategy='cos', cycle_momentum=True, "
        "base_momentum=0.85, max_momentum=0.95, div_factor=10.0, final_div_factor=100.0, three_phase=False), "
        "stepped per batch")
    assert torch.load(run_dir(tiny_artifacts) / "last.pt", weights_only=True)["scheduler_state"]["total_steps"] == 8
    assert cycled["augmentation"] == "random horizontal flip (p=0.5), random shift up to 2 px along each axis"
