"""The page's training section against the real inference API process, which reads training.json files that the
trainer's own writer (``services.trainer.progress``) puts in its ARTIFACTS_DIR; no file, no section."""

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from services.frontend.app.training import about, settings_line, time_left
from services.trainer.progress import TrainingProgress
from shared.training_progress import progress_path
from tests.frontend.conftest import start_inference

JSON = {"Accept": "application/json"}
RUN_ID = "20261201-120000-0badcafe"
SETTINGS = {"epochs": 10, "batch_size": 128, "lr": 0.003, "device": "cpu", "precision": "fp32", "world_size": 1}


@pytest.fixture(scope="module")
def watched_api(tiny_artifacts, tiny_data_dir, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The API (serving the tiny model) and its ARTIFACTS_DIR, where the tests write training records."""
    workdir = tmp_path_factory.mktemp("fe-training")
    server = start_inference(tiny_artifacts, tiny_data_dir, workdir)
    try:
        yield server.url, workdir / "artifacts"
    finally:
        server.stop()


@pytest.fixture
def artifacts(watched_api) -> Iterator[Path]:
    yield watched_api[1]
    progress_path(watched_api[1]).unlink(missing_ok=True)


@pytest.fixture
def client(make_app, watched_api):
    return make_app(inference_url=watched_api[0], training_ttl_s=0).test_client()


def served_version(url: str) -> str:
    return requests.get(f"{url}/ready", timeout=5).json()["model_version"]


def epoch_row(epoch: int) -> dict:
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.1 / epoch, "train_accuracy": 0.6 + epoch / 50,
            "val_accuracy": 0.58 + epoch / 50, "seconds": 30.0, "images": 12_800}


def running(artifacts: Path, epochs_done: int, steps: int, interval_s: float = 600.0) -> TrainingProgress:
    """A record written as the trainer writes it: ``epochs_done`` epochs of 100 steps, then ``steps`` more."""
    progress = TrainingProgress(progress_path(artifacts), RUN_ID, SETTINGS, interval_s)
    progress.begin(10, 100, {"train": 12_800, "val": 5000, "test": 10_000})
    history = []
    for epoch in range(1, epochs_done + 1):
        progress.begin_epoch(epoch)
        for _ in range(100):
            progress.step_done(128)
        progress.validating()
        history.append(epoch_row(epoch))
        progress.end_epoch(history)
    progress.begin_epoch(epochs_done + 1)
    for _ in range(steps):
        progress.step_done(128)
    progress.write()
    return progress


def section_json(client, shown: str = "") -> dict:
    """The page's /training, its HTML with the whitespace of the template's line breaks folded."""
    response = client.get(f"/training?shown={shown}", headers=JSON)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    return {**response.get_json(), "html": folded(response.get_json()["html"])}


def page_text(client) -> str:
    return folded(client.get("/").get_data(as_text=True))


def folded(html: str) -> str:
    return " ".join(html.split())


def test_without_a_progress_file_the_page_has_no_training_section(client, artifacts):
    page = client.get("/")
    assert page.status_code == 200 and 'id="training"' not in page.get_data(as_text=True)
    assert section_json(client) == {"state": None, "poll": False, "serving_version": None, "html": ""}


def test_a_running_run_shows_the_bar_the_time_left_and_curves_that_grow(client, artifacts):
    running(artifacts, epochs_done=2, steps=50)
    page = page_text(client)
    section = page[page.index('id="training"'):]
    assert 'data-state="running"' in section and 'data-poll="true"' in section
    assert 'value="25.0"' in section and ">25 %<" in section  # 250 of 1000 steps
    assert "Epoch 3 of 10, step 50 of 100" in section and 'data-testid="training-eta"' in section and RUN_ID in section
    assert "cpu · fp32 · batch 128 · lr 0.003" in section
    assert 'id="training-loss-chart-title"' in section and 'id="training-accuracy-chart-title"' in section

    before = section_json(client)
    running(artifacts, epochs_done=3, steps=10)
    after = section_json(client)
    assert before["poll"] and after["poll"] and after["state"] == "running"
    assert 'value="31.0"' in after["html"] and "<section" not in after["html"]  # the body, for app.js to swap in
    dots = [len(re.findall(r'class="dot series-0', body["html"])) for body in (before, after)]
    assert dots == [4, 6]  # training loss and accuracy: one dot more per epoch each


def test_a_finished_run_announces_its_model_once_the_api_serves_it(client, artifacts, watched_api):
    serving = served_version(watched_api[0])
    running(artifacts, epochs_done=10, steps=0).finished(serving, True)
    body = section_json(client, shown="an-older-version")
    assert body["state"] == "finished" and body["poll"] is False and body["serving_version"] == serving
    assert f"New model <code>{serving}</code> now serving." in body["html"]
    assert 'data-testid="training-reload"' in body["html"] and "<progress" not in body["html"]
    assert 'data-testid="training-reload"' not in section_json(client, shown=serving)["html"]  # already on show
    assert "10 epochs in 5.0 min, best validation accuracy 78.00%" in page_text(client)

    running(artifacts, epochs_done=10, steps=0).finished("20261201-130000-feedf00d", True)
    pending = section_json(client)
    assert pending["poll"] is True and "switches to it within seconds" in pending["html"]  # keeps watching
    running(artifacts, epochs_done=10, steps=0).finished("20261201-130000-feedf00d", False)
    kept = section_json(client)
    assert kept["poll"] is False and "was kept, not made the latest" in kept["html"]


def test_failed_interrupted_and_silent_runs_say_what_happened(client, artifacts):
    with pytest.raises(RuntimeError), running(artifacts, epochs_done=1, steps=20):
        raise RuntimeError("CUDA out of memory")
    failed = section_json(client)
    assert failed["state"] == "failed" and failed["poll"] is False
    assert "During epoch 2 of 10" in failed["html"] and "<code>RuntimeError</code> CUDA out of memory" in failed["html"]

    progress = running(artifacts, epochs_done=4, steps=5)
    progress.interruptions = (KeyboardInterrupt,)
    with pytest.raises(KeyboardInterrupt), progress:
        raise KeyboardInterrupt
    interrupted = page_text(client)
    assert 'data-state="interrupted"' in interrupted and "Stopped during epoch 5 of 10" in interrupted
    assert "resume after epoch 4" in interrupted

    running(artifacts, epochs_done=2, steps=3, interval_s=0.001)  # its heartbeat goes silent at once
    deadline = time.monotonic() + 60
    while (silent := section_json(client))["state"] != "stale":
        assert time.monotonic() < deadline, silent
        time.sleep(0.05)
    assert silent["poll"] is True and "Nothing heard from the trainer for" in silent["html"]
    assert "resumes after epoch 2" in silent["html"] and "<progress" in silent["html"]


def test_an_unreadable_progress_file_hides_the_section_and_the_page_still_works(client, artifacts):
    progress_path(artifacts).write_text("{not json")
    page = client.get("/")
    assert page.status_code == 200 and 'id="training"' not in page.get_data(as_text=True)
    assert 'class="pixelated"' in page.get_data(as_text=True)  # the rest of the page is all there
    answer = client.get("/training", headers=JSON)
    assert answer.status_code == 503 and answer.get_json()["error"] == "training_unavailable"


def test_durations_and_settings_read_as_people_say_them():
    assert [about(s) for s in (None, 0.4, 40, 480, 3900)] == [None, "0 s", "40 s", "8 min", "1 h 05 min"]
    assert [time_left(s) for s in (None, 0.4, 480)] == ["estimating the time left", "almost done", "about 8 min left"]
    assert settings_line({**SETTINGS, "world_size": 2, "precision": "bf16 autocast"}) == \
        "cpu · bf16 autocast · batch 128 · lr 0.003 · 2 processes"
    assert settings_line({"lr": "fast"}) == "lr fast" and settings_line({}) == ""
