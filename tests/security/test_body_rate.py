"""A body trickled slower than MIN_BODY_RATE is cut within the bound, straight at the API and through the edge.

The API here runs with MIN_BODY_RATE 1000 B/s after BODY_GRACE_S 2 s; the client announces 100,000 bytes and sends
one every 0.1 s (10 B/s), so the bound for its body is 2 + 100,000 / 1000 = 102 s, and the cut comes once the 2 s
have passed (within the middleware's 0.5 s sweep after them). The test waits up to that bound (and 10 s more) for
the cut, and asserts what cannot depend on the machine's speed: never before the grace, long before the client could
have finished, a 408 in JSON, and the connection closed.
"""

import json
import select
import socket
import time

from tests.reliability.clients import JSON_BODY, address, body_of, status_of
from tests.security.conftest import API_KEYS, BODY_GRACE_S, MIN_BODY_RATE

DECLARED = 100_000
BOUND_S = BODY_GRACE_S + DECLARED / MIN_BODY_RATE


def trickle(url: str, headers: dict[str, str], every_s: float = 0.1, source: str = "127.0.0.1",
            limit_s: float = BOUND_S + 10) -> tuple[float, int, bytes]:
    """POST /predict announcing DECLARED bytes and sending one every ``every_s``, until the server answers and
    closes (or ``limit_s``): (seconds until the connection closed, bytes sent, the answer)."""
    lines = ["POST /predict HTTP/1.1", f"Host: {address(url)[0]}", "Content-Type: application/json",
             f"Content-Length: {DECLARED}", *(f"{name}: {value}" for name, value in headers.items())]
    sock = socket.create_connection(address(url), timeout=10, source_address=(source, 0))
    started, sent, answer = time.monotonic(), 0, b""
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while time.monotonic() - started < limit_s:
            readable, _, _ = select.select([sock], [], [], every_s)
            if readable:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                answer += chunk
                continue
            try:
                sock.sendall(b" ")
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                break
        return time.monotonic() - started, sent, answer
    finally:
        sock.close()


def assert_cut_with_408(elapsed: float, sent: int, answer: bytes, says_close: bool = True) -> dict:
    """The answer is the API's 408 in JSON, and the connection was closed (``trickle`` returned before its limit)
    at least BODY_GRACE_S after the headers. uvicorn says ``Connection: close``; nginx relays the answer with its
    own connection header and then closes, as it does not read the rest of a body its upstream refused."""
    assert status_of(answer) == 408, answer[:400]
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert b"content-type: application/json" in head, head
    assert not says_close or b"connection: close" in head, head
    body = json.loads(body_of(answer))
    assert body["error"] == "body_too_slow" and "MIN_BODY_RATE" in body["detail"], body
    assert elapsed >= BODY_GRACE_S, "never before the grace"
    assert elapsed < BOUND_S and sent < DECLARED / 10, "cut by the server, long before the client could finish"
    return body


def test_a_trickled_body_is_cut_by_the_api(api, figures):
    elapsed, sent, answer = trickle(api.url, {"Authorization": f"Bearer {API_KEYS[0]}"})
    assert_cut_with_408(elapsed, sent, answer)
    figures["body deadline (API)"] = (f"a body at 10 B/s against MIN_BODY_RATE {MIN_BODY_RATE} B/s after "
                                      f"{BODY_GRACE_S} s: 408 and closed after {elapsed:.2f} s, {sent} bytes sent "
                                      f"(bound for its 100 kB: {BOUND_S:.0f} s)")


def test_a_trickled_body_is_cut_through_the_edge(start_edge, figures):
    edge = start_edge()
    elapsed, sent, answer = trickle(edge.api_url, {"Authorization": f"Bearer {API_KEYS[0]}"}, source="127.0.0.9")
    assert_cut_with_408(elapsed, sent, answer, says_close=False)
    figures["body deadline (edge)"] = (f"the same through the edge (bodies streamed to the API): 408 and closed "
                                       f"after {elapsed:.2f} s, {sent} bytes sent")


def test_an_answer_before_the_body_closes_the_connection(api):
    """A 401 (no key) is sent before the body is read: the connection is closed, not kept while the rest trickles in
    (uvicorn would otherwise drop the incoming bytes for as long as the client sends them, with no deadline)."""
    elapsed, sent, answer = trickle(api.url, {}, limit_s=30)
    assert status_of(answer) == 401 and b"connection: close" in answer.split(b"\r\n\r\n", 1)[0].lower(), answer
    assert sent < DECLARED


def test_complete_bodies_and_bodyless_requests_keep_their_connection(api):
    with socket.create_connection(address(api.url), timeout=30) as sock:
        request = (f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEYS[0]}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(JSON_BODY)}\r\n\r\n").encode() + JSON_BODY
        for _ in range(3):  # the same connection serves all three
            sock.sendall(request)
            head = _read_answer(sock)
            assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower(), head
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        head = _read_answer(sock)
        assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower(), head


def _read_answer(sock: socket.socket) -> bytes:
    """Read one answer with a Content-Length from a kept-alive connection; return its head."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(
        b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head
