"""training.json written by real training runs on tiny IDX data: what a finished, failed and crashed run records,
the atomic rewrite under a polling reader, and torchrun's other ranks writing nothing."""

import json
import threading

import pytest
import torch

from services.trainer.distributed import World
from services.trainer.progress import open_progress
from services.trainer.signals import StopFlag, StopRequested
from services.trainer.train import run
from shared.artifacts import read_manifest
from shared.data import DatasetNotFoundError
from shared.training_progress import progress_path
from tests.conftest import tiny_settings
from tests.trainer.test_training import trainer_process


def progress(artifacts) -> dict:
    return json.loads(progress_path(artifacts).read_text())


def test_a_finished_run_records_its_settings_history_and_published_model(tiny_artifacts):
    record, metrics = progress(tiny_artifacts), json.loads((tiny_artifacts / "metrics.json").read_text())
    assert record["state"] == "finished" and record["phase"] is None and record["failure"] is None
    assert record["run_id"] and record["resumed_from_epoch"] is None
    settings = record["settings"]
    assert (settings["epochs"], settings["batch_size"], settings["lr"], settings["device"]) == (2, 128, 0.003, "cpu")
    assert (settings["world_size"], settings["per_rank_batch_size"], settings["precision"]) == (1, 128, "fp32")
    assert settings["data"] == {"train": 500, "val": 100, "test": 200}
    assert (record["epoch"], record["epochs"], record["steps_per_epoch"]) == (2, 2, 4)  # 500 images in batches of 128
    assert record["done_steps"] == record["total_steps"] == 8 and record["fraction"] == 1.0
    assert [row["val_accuracy"] for row in record["history"]] == [row["val_accuracy"] for row in metrics["history"]]
    assert record["model_version"] == metrics["model_version"] == read_manifest(tiny_artifacts).model_version
    assert record["is_latest"] is True
    assert record["images_per_s"] > 0 and record["elapsed_s"] > 0
    assert record["started_at"] <= record["finished_at"] == record["updated_at"]


def test_settings_that_already_finished_leave_the_record_alone(tiny_data_dir, tiny_artifacts):
    before = progress_path(tiny_artifacts).read_bytes()
    assert run(tiny_settings(tiny_data_dir, tiny_artifacts), StopFlag()) == 0  # nothing to do: no new run
    assert progress_path(tiny_artifacts).read_bytes() == before


def test_a_reader_polling_the_record_never_meets_half_a_file(tiny_data_dir, tmp_path):
    seen, failures, done = [], [], threading.Event()

    def poll() -> None:
        while True:
            last = done.is_set()  # set once run() returned: this read is after the last write
            try:
                seen.append(json.loads(progress_path(tmp_path).read_text()))
            except FileNotFoundError:
                pass  # not written yet
            except Exception as error:  # any other failure is what the test is looking for
                failures.append(repr(error))
            if last:
                return

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        settings = tiny_settings(tiny_data_dir, tmp_path, epochs=3, batch_size=32, progress_interval_s=0.01)
        assert run(settings, StopFlag()) == 0
    finally:
        done.set()
        reader.join()
    assert failures == []
    steps = [record["done_steps"] for record in seen]
    assert steps == sorted(steps)  # one writer at a time: an older snapshot never replaces a newer one
    assert seen[-1]["state"] == "finished" and seen[-1]["done_steps"] == 48
    assert {record["phase"] for record in seen} >= {"training", None}
    assert any(0 < record["fraction"] < 1 for record in seen)  # seen part-way, not only at the end
    assert len({record["updated_at"] for record in seen}) >= 3


def test_missing_data_records_a_failed_run_with_the_message(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        run(tiny_settings(tmp_path / "no-data", tmp_path / "artifacts"), StopFlag())
    record = progress(tmp_path / "artifacts")
    assert record["state"] == "failed" and record["failure"]["type"] == "DatasetNotFoundError"
    assert "FashionMNIST not found in" in record["failure"]["message"] and record["finished_at"]


def test_a_crash_mid_run_records_failed_and_keeps_its_exit_code(tiny_data_dir, tmp_path):
    (tmp_path / "run").write_text("a file where the run folder belongs: saving the first epoch fails")
    process = trainer_process(tiny_data_dir, tmp_path, "--epochs", "3", "--progress-interval-s", "0.05")
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 1 and "Traceback" in output  # an unexpected error, as without progress
    record = progress(tmp_path)
    assert record["state"] == "failed" and record["epoch"] == 1
    assert record["failure"]["type"] in ("FileExistsError", "NotADirectoryError"), record["failure"]
    assert record["failure"]["message"]


def test_an_interrupted_run_says_so_and_how_to_resume(tiny_data_dir, tmp_path):
    settings = tiny_settings(tiny_data_dir, tmp_path)
    with pytest.raises(StopRequested), \
            open_progress(settings, torch.device("cpu"), World(), None, interruptions=(StopRequested,)):
        raise StopRequested
    record = progress(tmp_path)
    assert record["state"] == "interrupted" and "resume" in record["detail"] and record["failure"] is None


def test_only_rank_0_writes(tiny_data_dir, tmp_path):
    settings = tiny_settings(tiny_data_dir, tmp_path)
    with open_progress(settings, torch.device("cpu"), World(rank=1, size=2), None, (StopRequested,)) as other:
        other.begin(2, 4, {"train": 500})
        other.end_epoch([{"epoch": 1}])
    assert not progress_path(tmp_path).exists()
