"""GET /training against the real API process while a real trainer runs into its artifacts directory: running,
interrupted by SIGTERM, resumed as the same run, killed (stale), resumed again, finished, and its model served."""

import json
import signal
import subprocess
import time
from collections.abc import Callable

import requests

from shared.training_progress import progress_path
from tests.trainer.test_training import trainer_process

EPOCHS = 8
FLAGS = ("--epochs", str(EPOCHS), "--batch-size", "64", "--progress-interval-s", "0.1")  # 8 steps an epoch


def wait_for(condition: Callable[[], dict | None], what: str, process: subprocess.Popen | None = None,
             timeout: float = 300.0) -> dict:
    """Poll until ``condition`` returns an answer; fail with the trainer's output if it exits first."""
    deadline = time.monotonic() + timeout
    while (answer := condition()) is None:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the trainer exited ({process.returncode}) before {what}:\n{process.stdout.read()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return answer


def training(url: str, **expected) -> dict | None:
    """/training when it answers 200 with every ``expected`` field (a callable: a test of that field), else None."""
    response = requests.get(f"{url}/training", timeout=5)
    if response.status_code != 200:
        return None
    body = response.json()
    for key, wanted in expected.items():
        if not (wanted(body.get(key)) if callable(wanted) else body.get(key) == wanted):
            return None
    return body


def test_no_progress_file_is_404_a_broken_one_503_and_a_bare_one_still_answers(start_server, default_model_dir,
                                                                               tmp_path):
    with start_server(ARTIFACTS_DIR=tmp_path, DEFAULT_MODEL_DIR=default_model_dir) as url:
        missing = requests.get(f"{url}/training", timeout=5)
        assert missing.status_code == 404 and missing.json()["error"] == "no_training"
        progress_path(tmp_path).write_text('{"state": "running", "epoch": ')
        broken = requests.get(f"{url}/training", timeout=5)
        assert broken.status_code == 503 and broken.json()["error"] == "training_progress_unreadable"
        assert "not valid JSON" in broken.json()["detail"]
        progress_path(tmp_path).write_text(json.dumps({"state": "running", "epoch": "three"}))
        bare = requests.get(f"{url}/training", timeout=5)
        assert bare.status_code == 200 and bare.headers["Cache-Control"] == "no-store"
        assert bare.json()["state"] == "stale" and bare.json()["epoch"] == "three"  # no heartbeat: stale
        assert requests.get(f"{url}/health", timeout=5).status_code == 200


def test_a_run_watched_through_the_api_from_start_to_its_model_serving(start_server, tiny_data_dir,
                                                                       default_model_dir, tmp_path):
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    with start_server(ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=default_model_dir, RELOAD_INTERVAL_S="0.2",
                      wait_for="/ready") as url:
        default_version = requests.get(f"{url}/ready", timeout=5).json()["model_version"]
        assert requests.get(f"{url}/training", timeout=5).status_code == 404

        first = trainer_process(tiny_data_dir, artifacts, *FLAGS)
        seen = wait_for(lambda: training(url, state="running", history=lambda rows: rows and len(rows) >= 1,
                                         phase="training", step=lambda step: step and step > 0),
                        "an epoch done and the next one going", first)
        assert seen["run_id"] and seen["resumed_from_epoch"] is None and seen["serving_version"] == default_version
        settings = seen["settings"]
        assert (settings["epochs"], settings["batch_size"], settings["device"], settings["world_size"]) == \
            (EPOCHS, 64, "cpu", 1)
        assert settings["data"]["train"] == 500 and (seen["steps_per_epoch"], seen["total_steps"]) == (8, 8 * EPOCHS)
        assert 0 < seen["fraction"] < 1 and seen["images_per_s"] > 0 and seen["eta_s"] > 0 and seen["elapsed_s"] > 0
        assert {"train_loss", "val_loss", "val_accuracy"} <= seen["history"][0].keys()
        wait_for(lambda: training(url, done_steps=lambda done: done > seen["done_steps"]), "the step count moving",
                 first)

        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=300)
        assert first.returncode == 128 + signal.SIGTERM
        stopped = training(url)
        assert stopped["state"] == "interrupted" and stopped["run_id"] == seen["run_id"]
        assert "resume" in stopped["detail"] and stopped["epoch"] < EPOCHS
        completed = len(stopped["history"])

        second = trainer_process(tiny_data_dir, artifacts, *FLAGS)
        resumed = wait_for(lambda: training(url, state="running", resumed_from_epoch=completed), "the resumed run",
                           second)
        assert resumed["run_id"] == seen["run_id"] and len(resumed["history"]) >= completed
        second.send_signal(signal.SIGKILL)  # no last word: the heartbeat stops
        second.wait(timeout=60)
        stale = wait_for(lambda: training(url, state="stale"), "the record to go stale")
        assert stale["heartbeat_age_s"] > stale["stale_after_s"] == 1.0 and stale["run_id"] == seen["run_id"]

        third = trainer_process(tiny_data_dir, artifacts, *FLAGS)
        output, _ = third.communicate(timeout=600)
        assert third.returncode == 0, output
        done = training(url)
        assert done["state"] == "finished" and done["run_id"] == seen["run_id"] and done["fraction"] == 1.0
        assert done["model_version"] and done["is_latest"] is True and len(done["history"]) == EPOCHS
        arrived = wait_for(lambda: training(url, serving_version=done["model_version"]), "the new model serving")
        assert arrived["state"] == "finished"
