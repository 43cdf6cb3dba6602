"""The edge's per-client limits and the client address the services believe, with deploy/nginx/ in a real nginx
in front of the real API and page (``EdgeServer``; clients told apart by their 127.x source address).

Rates are set per minute (EDGE_RATE_LIMIT=1r/m): over a test's few seconds the rate adds no request, so exactly
1 + EDGE_RATE_BURST requests of a client are served, whatever the machine's speed, and the rest refused.
"""

import contextlib
import json
import socket
import threading
import time

import pytest

from tests.reliability.clients import JSON_BODY, address
from tests.security.conftest import API_KEYS, Answer, bearer, call, log_text
from tests.security.test_body_rate import trickle

BURST = 3


def assert_json_refusal(answer: Answer, status: int, error: str, retry_after: str) -> None:
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json", answer.headers
    body = answer.json()
    assert set(body) == {"error", "detail"} and body["error"] == error and body["detail"], body
    assert answer.headers["retry-after"] == retry_after, answer.headers


def test_a_client_over_its_rate_gets_429_json_while_another_is_served(start_edge, figures):
    edge = start_edge(EDGE_RATE_LIMIT="1r/m", EDGE_RATE_BURST=str(BURST))
    first = [call(edge.api_url, "/health", source="127.0.0.2") for _ in range(BURST + 5)]
    assert [answer.status for answer in first] == [200] * (BURST + 1) + [429] * 4
    for answer in first[BURST + 1:]:
        assert_json_refusal(answer, 429, "too_many_requests", retry_after="60")
    # Both public ports share the client's budget; another client has its own, on either port.
    assert_json_refusal(call(edge.page_url, "/health", source="127.0.0.2"), 429, "too_many_requests", "60")
    other = call(edge.api_url, "/predict", "POST", source="127.0.0.3", body=JSON_BODY,
                 headers={"Content-Type": "application/json", **bearer(API_KEYS[0])})
    assert other.status == 200 and other.json()["label"], other
    assert call(edge.page_url, "/", source="127.0.0.4").status == 200
    # The edge's own health check and the API's internal port (the page's, not published) are not limited.
    assert all(call(edge.health_url.rsplit("/", 1)[0], "/health", source="127.0.0.2").status == 200 for _ in range(5))
    assert all(call(edge.internal_url, "/health", source="127.0.0.2").status == 200 for _ in range(BURST + 5))
    figures["edge: request rate"] = (f"EDGE_RATE_LIMIT=1r/m, EDGE_RATE_BURST={BURST}: of {len(first)} requests "
                                     f"from one client {BURST + 1} served, {len(first) - BURST - 1} refused with "
                                     "429 JSON (Retry-After: 60); another client served meanwhile on both ports")


def test_the_default_rate_serves_a_normal_client(start_edge):
    """20r/s with a burst of 40: a page view and a run of 40 quick API calls pass untouched."""
    edge = start_edge()
    for path in ("/", "/static/app.css", "/static/app.js", "/sample"):
        assert call(edge.page_url, path, source="127.0.0.5").status == 200, path
    assert {call(edge.api_url, "/ready", source="127.0.0.5").status for _ in range(36)} == {200}


class HeldUploads:
    """``count`` uploads from ``source`` to the page's port that keep sending a byte a second and never finish:
    each is a request in progress at the edge (the page's bodies are buffered there)."""

    def __init__(self, url: str, source: str, count: int) -> None:
        self.sockets = []
        for _ in range(count):
            sock = socket.create_connection(address(url), timeout=10, source_address=(source, 0))
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: edge\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                         b"Content-Length: 100000\r\n\r\n--x")
            self.sockets.append(sock)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._keep_sending, daemon=True)
        self.thread.start()

    def _keep_sending(self) -> None:
        while not self.stopped.wait(1.0):
            for sock in self.sockets:
                with contextlib.suppress(OSError):  # closed by the edge: the test then fails on its own
                    sock.sendall(b"x")

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def wait_for_status(url: str, path: str, source: str, status: int, timeout: float = 60) -> Answer:
    """Ask until the answer has ``status`` (the edge's workers take up new connections at their own pace)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = call(url, path, source=source)
        if answer.status == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def test_a_client_over_its_connections_gets_503_json_while_another_is_served(start_edge, figures):
    edge = start_edge(EDGE_CONN_LIMIT="2")
    uploads = HeldUploads(edge.page_url, "127.0.0.6", 2)
    try:
        refused = wait_for_status(edge.api_url, "/health", "127.0.0.6", 503)
        assert_json_refusal(refused, 503, "too_many_connections", retry_after="1")
        assert call(edge.api_url, "/health", source="127.0.0.7").status == 200
        assert call(edge.page_url, "/", source="127.0.0.7").status == 200
    finally:
        uploads.close()
    assert wait_for_status(edge.api_url, "/health", "127.0.0.6", 200).status == 200, "served again once they end"
    figures["edge: connections"] = ("EDGE_CONN_LIMIT=2: a client holding 2 uploads gets 503 JSON (Retry-After: 1) "
                                    "for a third request, another client is served, the first again once they end")


@pytest.mark.parametrize("settings", [{"EDGE_RATE_LIMIT": "20/s"}, {"EDGE_RATE_LIMIT": "0r/s"},
                                      {"EDGE_RATE_BURST": "-1"}, {"EDGE_CONN_LIMIT": "0"}, {"EDGE_CONN_LIMIT": "a"}])
def test_the_edge_refuses_to_start_with_a_limit_it_cannot_read(start_edge, settings):
    with pytest.raises(RuntimeError, match="edge: EDGE_"):
        start_edge(**settings)


def wait_for_line(server, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log_text(server).splitlines():
            if text in line:
                return line
        time.sleep(0.1)
    raise AssertionError(f"no line with {text!r} in {server.log_path}")


def test_forwarded_for_is_believed_from_the_edge_only(api, page, start_edge):
    """FORWARDED_ALLOW_IPS is the edge's address (127.0.0.1 here; the stack's network in compose): the edge replaces
    what a client sent with the address it saw, and a client that reaches a service around the edge keeps its own
    address whatever it claims."""
    edge = start_edge()
    key = {"Authorization": f"Bearer {API_KEYS[0]}"}
    # The API logs the client of a body it cuts for being too slow: straight at it from outside the edge ...
    trickle(api.url, {**key, "X-Forwarded-For": "203.0.113.7"}, source="127.0.0.21")
    assert "203.0.113.7" not in wait_for_line(api, "127.0.0.21:")
    trickle(edge.api_url, {**key, "X-Forwarded-For": "203.0.113.8"}, source="127.0.0.22")  # ... and through it
    line = wait_for_line(api, "127.0.0.22:")
    assert "203.0.113.8" not in line and "too slowly" in line, line

    assert call(page.url, "/health?direct-marker", source="127.0.0.23",
                headers={"X-Forwarded-For": "203.0.113.9"}).status == 200
    assert wait_for_line(page, "direct-marker").startswith("127.0.0.23 ")
    assert call(edge.page_url, "/health?edge-marker", source="127.0.0.24",
                headers={"X-Forwarded-For": "203.0.113.10"}).status == 200
    assert wait_for_line(page, "edge-marker").startswith("127.0.0.24 ")


def test_the_page_uses_its_own_key_through_the_edge_and_never_shows_it(start_edge):
    edge = start_edge()
    answers = [call(edge.page_url, path, source="127.0.0.30") for path in ("/", "/sample", "/health", "/?sample=3")]
    assert [answer.status for answer in answers] == [200] * 4
    assert json.loads(answers[1].body)["prediction"]["label"]
    for answer in answers:
        assert all(key.encode() not in answer.body for key in API_KEYS)
        assert all(key not in value for key in API_KEYS for value in answer.headers.values())
    assert call(edge.api_url, "/samples/3", source="127.0.0.30").status == 401, "the page's key is the page's alone"
