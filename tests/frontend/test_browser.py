"""The page in headless Chromium (Playwright): random samples update in place, uploads and drawings classify.

Screenshots land in tests/artifacts/. ``SAVE_SCREENSHOT=docs/screenshot.png pytest tests/frontend/test_browser.py``
also writes the documentation screenshot (a correct random sample plus an uploaded picture, full page) and, beside
it, calibration.png (the calibration card with its reliability diagram).
"""

import base64
import os
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect, sync_playwright

from shared.classes import CLASS_NAMES
from tests.frontend.conftest import ARTIFACTS
from tests.processes import REPO_ROOT

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.slow
# Playwright's waits (actions 30 s, ``expect`` 5 s by default) are deadlines on conditions, never sleeps; a page that
# renders in well under a second here may take seconds on a busy machine, so every wait gets two minutes.
WAIT_MS = 120_000
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser, url: str, width: int) -> tuple[Page, list[str]]:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.goto(url)
    return page, problems


def next_sample(page: Page) -> str:
    """Click "Random sample" until another test image is shown (without reloading the page)."""
    shown = page.get_by_test_id("sample-index").inner_text()
    for _ in range(10):
        with page.expect_response(lambda response: "/sample" in response.url) as answer:
            page.get_by_role("button", name="Random sample").click()
        assert answer.value.status == 200
        expect(page.locator("#sample-result")).to_have_attribute("aria-busy", "false")
        now = page.get_by_test_id("sample-index").inner_text()
        if now != shown:
            return now
    raise AssertionError("ten clicks showed the same sample")


def test_random_sample_upload_and_drawing(browser, frontend_server):
    page, problems = open_page(browser, frontend_server.url + "/", 1280)
    page.evaluate("window.notReloaded = true")
    before = page.locator("#sample-result").inner_text()
    first_index = page.get_by_test_id("sample-index").inner_text()

    next_sample(page)
    assert page.evaluate("window.notReloaded") is True  # updated in place by fetch, not a page load
    assert page.locator("#sample-result").inner_text() != before
    image = page.locator("#sample-result img.pixelated")
    expect(image).to_be_visible()
    page.wait_for_function("() => { const img = document.querySelector('#sample-result img.pixelated');"
                           " return img && img.complete && img.naturalWidth > 0; }")
    assert image.evaluate("img => img.naturalWidth") == 28  # the API's own 28x28 PNG ...
    assert image.bounding_box()["width"] > 8 * 28  # ... scaled up by CSS (image-rendering: pixelated)
    overlay = page.locator("#sample-result").get_by_test_id("overlay")  # why: the heat map beside the picture
    expect(overlay).to_be_visible()
    page.wait_for_function("() => { const img = document.querySelector('#sample-result [data-testid=overlay]');"
                           " return img && img.complete && img.naturalWidth === 280; }")
    assert _beside(image, overlay)
    assert page.locator("#sample-result").get_by_test_id("prediction-label").inner_text() in CLASS_NAMES
    assert page.locator("#sample-result").get_by_test_id("true-label").inner_text() in CLASS_NAMES
    expect(page.locator("#sample-result .topk-row")).to_have_count(3)
    correct = "is-correct" in page.locator("#sample-result figure").get_attribute("class")
    verdict = page.locator("#sample-result").get_by_test_id("verdict").inner_text()
    assert verdict == ("✓ Correct" if correct else "✗ Wrong")

    history = page.locator("#history-list li")
    expect(history).to_have_count(2)  # the first sample and this one; a click shows the earlier one again
    history.nth(1).locator("a").click()
    expect(page.get_by_test_id("sample-index")).to_have_text(first_index)
    assert page.evaluate("window.notReloaded") is True

    png = base64.b64decode(requests.get(f"{frontend_server.inference_url}/samples/1", timeout=5)
                           .json()["image_png_base64"])
    page.set_input_files("#file-input", files=[{"name": "pullover.png", "mimeType": "image/png", "buffer": png}])
    page.get_by_role("button", name="Classify picture").click()
    result = page.locator("#upload-result figure")
    expect(result).to_contain_text("pullover.png")
    assert result.get_by_test_id("prediction-label").inner_text() in CLASS_NAMES
    expect(result.locator(".topk-row")).to_have_count(3)
    expect(result.get_by_test_id("overlay")).to_be_visible()
    assert _beside(result.locator("img.upload-preview"), result.get_by_test_id("overlay"))

    box = page.locator("#draw-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    for x, y in ((0.3, 0.8), (0.7, 0.8), (0.7, 0.2)):
        page.mouse.move(box["x"] + box["width"] * x, box["y"] + box["height"] * y, steps=5)
    page.mouse.up()
    page.get_by_role("button", name="Classify drawing").click()
    expect(result).to_contain_text("drawing.png")
    assert result.get_by_test_id("prediction-label").inner_text() in CLASS_NAMES
    expect(result.get_by_test_id("overlay")).to_be_visible()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "frontend-desktop.png", full_page=True)
    assert problems == []
    page.close()


def _beside(first, second) -> bool:
    """The two pictures sit side by side: same top, the second to the right, no overlap."""
    a, b = first.bounding_box(), second.bounding_box()
    return abs(a["y"] - b["y"]) < 2 and a["x"] + a["width"] <= b["x"]


def test_narrow_screen_has_no_horizontal_scroll(browser, frontend_server):
    page, problems = open_page(browser, frontend_server.url + "/", 375)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    expect(page.get_by_role("button", name="Random sample")).to_be_visible()
    image, overlay = page.locator("#sample-result img.pixelated"), page.locator("#sample-result").get_by_test_id(
        "overlay")
    expect(overlay).to_be_visible()
    assert _beside(image, overlay) and overlay.bounding_box()["width"] >= 120  # both still large enough to read
    expect(page.get_by_test_id("reliability-diagram")).to_be_visible()
    assert page.get_by_test_id("reliability-diagram").bounding_box()["width"] <= 375
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "frontend-mobile.png", full_page=True)
    assert problems == []
    page.close()


def test_documentation_screenshot(browser, frontend_server):
    """Writes SAVE_SCREENSHOT (e.g. docs/screenshot.png) when set; always checks the page renders fully."""
    page, problems = open_page(browser, frontend_server.url + "/", 1280)
    for clicks in range(30):  # fill the "recently shown" strip, then stop at a confident, correct prediction
        correct = "is-correct" in (page.locator("#sample-result figure").get_attribute("class") or "")
        confidence = float(page.locator("#sample-result").get_by_test_id("prediction-confidence")
                           .inner_text().split("%")[0])
        if clicks >= 9 and correct and confidence >= 80:
            break
        next_sample(page)
    png = base64.b64decode(requests.get(f"{frontend_server.inference_url}/samples/1", timeout=5)
                           .json()["image_png_base64"])
    page.set_input_files("#file-input", files=[{"name": "my-sweater.png", "mimeType": "image/png", "buffer": png}])
    page.get_by_role("button", name="Classify picture").click()
    expect(page.locator("#upload-result figure")).to_contain_text("my-sweater.png")
    expect(page.locator(".confusion tbody tr")).to_have_count(10)
    target = os.environ.get("SAVE_SCREENSHOT")
    path = (REPO_ROOT / target) if target else ARTIFACTS / "frontend-docs.png"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=True)
    assert Path(path).stat().st_size > 20_000
    calibration = Path(path).with_name("calibration.png")  # the reliability diagram on its own, for docs/api.md
    page.locator("section[aria-labelledby=calibration-title]").screenshot(path=calibration)
    assert calibration.stat().st_size > 10_000
    assert problems == []
    page.close()


def test_everything_works_without_javascript(browser, frontend_server):
    """The forms are real forms: without the script, each click loads a full server-rendered page."""
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(frontend_server.url + "/")
    shown = page.get_by_test_id("sample-index").inner_text()
    for _ in range(10):
        with page.expect_navigation():  # the new page has loaded before it is read, however long that takes
            page.get_by_role("button", name="Random sample").click()
        if page.get_by_test_id("sample-index").inner_text() != shown:
            break
    assert page.get_by_test_id("sample-index").inner_text() != shown
    assert page.locator("#sample-result").get_by_test_id("prediction-label").inner_text() in CLASS_NAMES

    png = base64.b64decode(requests.get(f"{frontend_server.inference_url}/samples/2", timeout=5)
                           .json()["image_png_base64"])
    page.set_input_files("#file-input", files=[{"name": "plain-form.png", "mimeType": "image/png", "buffer": png}])
    with page.expect_navigation():
        page.get_by_role("button", name="Classify picture").click()
    assert page.url.endswith("/predict")
    expect(page.locator("#upload-result figure")).to_contain_text("plain-form.png")
    context.close()
