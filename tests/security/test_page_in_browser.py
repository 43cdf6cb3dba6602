"""The page's own defences, in headless Chromium (Playwright) and over HTTP, with the API's keys set.

Over the page's whole flow (load, random sample, a sample from the history strip, upload, drawing) there is no
Content-Security-Policy violation and no console error, the page calls the API with its own key and that key
never reaches the browser: not in a page, a JSON answer, a header or a script. Then a script injected into the page
is blocked by the policy (``script-src 'self'``: no inline script, no inline event handler).
"""

import base64
import re
import secrets

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from services.frontend.app import CONTENT_SECURITY_POLICY, create_app
from services.frontend.app.config import Settings as PageSettings
from shared.classes import CLASS_NAMES
from tests.frontend.test_browser import CHROMIUM_ARGS, next_sample
from tests.security.conftest import API_KEYS, bearer

pytestmark = pytest.mark.slow

RECORD_VIOLATIONS = """
window.violations = [];
document.addEventListener("securitypolicyviolation", (event) => window.violations.push(
  {directive: event.effectiveDirective, blocked: event.blockedURI}));
"""


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_the_whole_flow_has_no_csp_violation_and_never_shows_the_key(browser, api, page):
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    tab.add_init_script(RECORD_VIOLATIONS)
    problems, responses = [], []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    tab.on("response", lambda response: responses.append(response))
    tab.goto(page.url + "/")
    first_index = tab.get_by_test_id("sample-index").inner_text()

    next_sample(tab)
    assert tab.locator("#sample-result").get_by_test_id("prediction-label").inner_text() in CLASS_NAMES
    tab.locator("#history-list li").nth(1).locator("a").click()
    expect(tab.get_by_test_id("sample-index")).to_have_text(first_index)

    png = base64.b64decode(requests.get(f"{api.url}/samples/1", headers=bearer(API_KEYS[0]), timeout=10)
                           .json()["image_png_base64"])
    tab.set_input_files("#file-input", files=[{"name": "upload.png", "mimeType": "image/png", "buffer": png}])
    tab.get_by_role("button", name="Classify picture").click()
    result = tab.locator("#upload-result figure")
    expect(result).to_contain_text("upload.png")
    assert result.get_by_test_id("prediction-label").inner_text() in CLASS_NAMES

    box = tab.locator("#draw-canvas").bounding_box()
    tab.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.2)
    tab.mouse.down()
    for x, y in ((0.3, 0.8), (0.7, 0.8), (0.7, 0.2)):
        tab.mouse.move(box["x"] + box["width"] * x, box["y"] + box["height"] * y, steps=5)
    tab.mouse.up()
    tab.get_by_role("button", name="Classify drawing").click()
    expect(result).to_contain_text("drawing.png")

    assert problems == [] and tab.evaluate("window.violations") == []
    seen = [(response.url, response.headers, response.body()) for response in responses
            if response.request.resource_type != "other"]
    assert {"document", "script", "stylesheet", "fetch"} <= {r.request.resource_type for r in responses}
    for url, headers, body in seen:
        for key in API_KEYS:
            assert key.encode() not in body and all(key not in value for value in headers.values()), url
    assert tab.locator("html").inner_html().count("Bearer") == 0

    # An injected inline script and an inline event handler are refused by the policy and reported.
    tab.evaluate("""() => {
      const script = document.createElement("script");
      script.textContent = "window.injected = 'script'";
      document.body.append(script);
      const holder = document.createElement("div");
      holder.innerHTML = '<img src="data:," onerror="window.injected = \\'handler\\'">';
      document.body.append(holder);
    }""")
    tab.wait_for_function("window.violations.length >= 2")
    assert tab.evaluate("window.injected") is None
    directives = {violation["directive"] for violation in tab.evaluate("window.violations")}
    assert directives == {"script-src-elem", "script-src-attr"}, directives
    assert any("Content Security Policy" in problem for problem in problems), "Chromium reports it too"
    tab.close()


def test_every_answer_of_the_page_carries_its_security_headers(page):
    answers = [requests.get(f"{page.url}{path}", timeout=30, headers=headers) for path, headers in (
        ("/", {}), ("/sample", {"Accept": "application/json"}), ("/static/app.js", {}), ("/health", {}),
        ("/no-such-page", {}), ("/no-such-page", {"Accept": "application/json"}))]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 200, 404, 404]
    for answer in answers:
        assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, answer.url
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "same-origin"
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in re.search(r"script-src[^;]*", CONTENT_SECURITY_POLICY).group(0)


def test_without_a_secret_key_each_process_makes_its_own_random_one():
    keys = {create_app(PageSettings(secret_key=None, redis_url="redis://127.0.0.1:1/0")).config["SECRET_KEY"]
            for _ in range(2)}
    assert len(keys) == 2 and all(re.fullmatch(r"[0-9a-f]{64}", key) for key in keys)
    chosen = secrets.token_hex(16)
    assert create_app(PageSettings(secret_key=chosen, redis_url="redis://127.0.0.1:1/0")).config["SECRET_KEY"] == chosen
