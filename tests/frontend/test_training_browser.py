"""The training section in headless Chromium: the bar and the curves move as training.json changes, without a
page load, and the new model's arrival shows once the real API has loaded it.

The records are written by the trainer's own writer into the API's ARTIFACTS_DIR, one state after the other, so
every step of the test waits for a state it set (Playwright's ``expect`` polls with a deadline). The section's
screenshots land in tests/artifacts/.
"""

import os
import shutil
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect, sync_playwright

from shared.artifacts import read_manifest
from tests.frontend.conftest import ARTIFACTS, delete_prefixed, new_prefix
from tests.frontend.test_browser import CHROMIUM_ARGS
from tests.frontend.test_training_section import running
from tests.processes import InferenceServer, ServerProcess, free_port

pytestmark = pytest.mark.slow
WAIT_MS = 60_000  # a deadline for each awaited state, never a pause


@pytest.fixture(scope="module")
def watched_stack(default_model_dir, tiny_data_dir, redis_server, tmp_path_factory) -> Iterator[dict]:
    """The real API (serving the shipped default model, watching an empty ARTIFACTS_DIR) and the real page,
    which polls every 0.2 s and caches /training not at all."""
    workdir = tmp_path_factory.mktemp("fe-training-browser")
    artifacts = workdir / "artifacts"
    artifacts.mkdir()
    api = InferenceServer(workdir, wait_for="/ready", ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=default_model_dir,
                          DATA_DIR=tiny_data_dir, THREADS="1", RELOAD_INTERVAL_S="0.2").start()
    port, prefix = free_port(), new_prefix()
    page = ServerProcess([sys.executable, "-m", "services.frontend"], f"http://127.0.0.1:{port}/health",
                         env={"PORT": str(port), "HOST": "127.0.0.1", "INFERENCE_URL": api.url,
                              "REDIS_URL": redis_server.url, "CACHE_PREFIX": prefix, "SECRET_KEY": "test",
                              "WORKERS": "1", "TRAINING_POLL_S": "0.2", "TRAINING_TTL_S": "0"},
                         log_path=workdir / "frontend.log")
    try:
        page.start()
        yield {"url": f"http://127.0.0.1:{port}", "artifacts": artifacts}
    finally:
        page.stop()
        api.stop()
        delete_prefixed(redis_server.url, [prefix])


def publish_copy(source, target) -> None:
    """Publish the tiny model into ``target`` as the trainer does: the model files first, the manifest last."""
    shutil.copytree(source / "models", target / "models")
    shutil.copy(source / "latest.json", target / ".latest.json.tmp")
    os.replace(target / ".latest.json.tmp", target / "latest.json")


def test_the_bar_and_curves_move_while_training_then_the_new_model_arrives(watched_stack, tiny_artifacts,
                                                                           default_model_dir):
    artifacts, new_version = watched_stack["artifacts"], read_manifest(tiny_artifacts).model_version
    running(artifacts, epochs_done=2, steps=0)  # 20 %
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.goto(watched_stack["url"] + "/")
        page.evaluate("window.notReloaded = true")
        bar, section = page.get_by_test_id("training-bar"), page.locator("#training")
        expect(bar).to_have_attribute("value", "20.0")
        expect(section.locator(".dot.series-0")).to_have_count(4)  # loss and accuracy: 2 epochs each

        running(artifacts, epochs_done=6, steps=50)  # 65 %
        expect(bar).to_have_attribute("value", "65.0", timeout=WAIT_MS)
        expect(page.get_by_test_id("training-percent")).to_have_text("65 %")
        expect(section.locator(".dot.series-0")).to_have_count(12, timeout=WAIT_MS)
        expect(page.get_by_test_id("training-eta")).to_be_visible()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        section.screenshot(path=ARTIFACTS / "training-running.png")

        running(artifacts, epochs_done=10, steps=0).finished(new_version, True)
        arrival = page.get_by_test_id("training-arrival")
        expect(arrival).to_contain_text("switches to it within seconds", timeout=WAIT_MS)
        expect(bar).to_have_count(0)
        publish_copy(tiny_artifacts, artifacts)  # the API hot-reloads it
        expect(arrival).to_contain_text(f"New model {new_version} now serving", timeout=WAIT_MS)
        section.screenshot(path=ARTIFACTS / "training-arrived.png")
        assert page.evaluate("window.notReloaded") is True  # all of it in place, by app.js

        page.get_by_test_id("training-reload").click()
        expect(page.get_by_test_id("model-version")).to_have_text(new_version)
        expect(page.get_by_test_id("training-reload")).to_have_count(0)  # the page shows the new model now
        assert problems == []
        chromium.close()
