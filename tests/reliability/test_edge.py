"""The edge (nginx in front of the compose stack) against misbehaving clients, through its published ports only.

Run by ``make compose-smoke`` (scripts/compose_smoke.sh) with EDGE_API_URL and EDGE_PAGE_URL set to the edge's
two ports on 127.0.0.1; skipped without them. The figures checked come from deploy/nginx/nginx.conf: headers within
10 s, no pause over 10 s in a body, header lines up to 8 KB (32 KB in all), bodies up to the services' limits.
"""

import concurrent.futures
import json
import os
import statistics
import threading
import time

import pytest
import requests

from tests.reliability.clients import JSON_BODY, abort, body_of, exchange, partial_upload, send_only, status_of
from tests.reliability.conftest import count, prometheus, server_errors
from tests.waiting import wait_until

API, PAGE = os.environ.get("EDGE_API_URL", ""), os.environ.get("EDGE_PAGE_URL", "")
pytestmark = pytest.mark.skipif(not (API and PAGE), reason="needs the compose stack: make compose-smoke sets "
                                                           "EDGE_API_URL and EDGE_PAGE_URL")
TIMEOUT_S = 10  # client_header_timeout and client_body_timeout
# The edge closes slow clients after its own TIMEOUT_S, a timer that a busy machine delays by milliseconds, not
# seconds; nginx's default would be 60 s. A close measured under 30 s is the edge's, whatever the machine's load.
CLOSED_WITHIN_S = 30
GIVE_UP_S = 75  # the clients wait this long at most: beyond nginx's default, so a wrong setting is measured
# Others are served meanwhile: an edge that made them wait for the slow clients would take TIMEOUT_S to answer.
SERVED_WITHIN_MS = TIMEOUT_S * 1000 / 2
SLOW_CLIENTS = 50


def _json_error(answer: bytes, status: int, error: str) -> None:
    assert status_of(answer) == status, answer[:300]
    assert b"application/json" in answer.split(b"\r\n\r\n", 1)[0], answer[:300]
    body = json.loads(body_of(answer))
    assert body["error"] == error and body["detail"], body


def _closed_after(sock, trickle: bytes = b"", limit: float = GIVE_UP_S) -> float:
    """Seconds until the edge closes ``sock``, sending ``trickle`` every half second meanwhile (at most ``limit``)."""
    started = time.monotonic()
    sock.settimeout(0.5)
    while time.monotonic() - started < limit:
        try:
            if trickle:
                sock.sendall(trickle)
            if sock.recv(65536) == b"":
                break
        except TimeoutError:
            continue
        except OSError:  # reset: closed as well
            break
    return time.monotonic() - started


def _latency_ms(url: str, count_: int = 20) -> list[float]:
    latencies = []
    with requests.Session() as session:
        for _ in range(count_):
            started = time.perf_counter()
            assert session.get(f"{url}/health", timeout=30).status_code == 200
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def test_the_stack_answers_through_the_edge():
    answer = requests.post(f"{API}/predict", data=JSON_BODY, headers={"Content-Type": "application/json"},
                           timeout=10)
    assert answer.status_code == 200 and answer.json()["label"]
    assert answer.headers.get("Server", "nginx").startswith("nginx"), "uvicorn stays behind the edge"
    assert requests.get(f"{PAGE}/health", timeout=10).json()["status"] == "ok"


def test_slow_headers_and_stalled_bodies_are_closed_by_the_edge_and_never_reach_the_api(figures):
    before = prometheus(API)
    with concurrent.futures.ThreadPoolExecutor(2 * SLOW_CLIENTS) as pool:
        headers = []
        for _ in range(SLOW_CLIENTS):  # a header line that never ends, one byte every half second
            sock = send_only(API, b"GET /health HTTP/1.1\r\nHost: edge\r\nX-Slow: ")
            headers.append(pool.submit(_closed_after, sock, b"x"))
        bodies = [pool.submit(_closed_after, partial_upload(API)) for _ in range(SLOW_CLIENTS)]
        # Every slow connection is established (the kernel finished its handshake) before this client connects, and
        # nginx accepts them in order, so it holds them all by the time it serves the first of these.
        during = _latency_ms(API)  # everyone else is served meanwhile
        header_s = [future.result() for future in headers]
        body_s = [future.result() for future in bodies]
    after = prometheus(API)
    assert min(header_s) >= TIMEOUT_S - 1 and max(header_s) < CLOSED_WITHIN_S, header_s
    assert min(body_s) >= TIMEOUT_S - 1 and max(body_s) < CLOSED_WITHIN_S, body_s
    assert max(during) < SERVED_WITHIN_MS, during
    # The API's bodies are passed on as they arrive (its MIN_BODY_RATE deadline cuts a trickle): each stalled upload
    # ended there as the client's fault (the API's 408 or, when the edge's timeout came first, a 499), never a 5xx.
    assert server_errors(after) == server_errors(before) == 0
    figures["edge: slow clients"] = (f"{SLOW_CLIENTS} trickling headers closed after {min(header_s):.1f}-"
                                     f"{max(header_s):.1f} s, {SLOW_CLIENTS} stalled bodies after {min(body_s):.1f}-"
                                     f"{max(body_s):.1f} s, no server error; /health meanwhile p50 "
                                     f"{statistics.median(during):.1f} ms, max {max(during):.0f} ms")


def test_clients_dropping_mid_body_never_reach_the_api():
    """The API's bodies are streamed to it, so it sees those uploads end: as the client's fault, never as server
    errors. One complete request after the drops must still be served, and once nothing is in progress any more
    (every dropped upload has ended at the API) no server error was counted."""
    for i, sock in enumerate([partial_upload(API) for _ in range(SLOW_CLIENTS)]):
        sock.close() if i % 2 else abort(sock)
    marker = requests.post(f"{API}/predict", data=JSON_BODY, headers={"Content-Type": "application/json"},
                           timeout=30)
    assert marker.status_code == 200, marker.text
    wait_until(lambda: count(prometheus(API), "inference_http_requests_in_progress") <= 1,  # the scrape itself
               "every dropped upload to end at the API")
    assert server_errors(prometheus(API)) == 0


def test_oversized_headers_and_request_lines_are_refused_in_json(figures):
    baseline = _latency_ms(API)
    answers, during = {}, []

    def meanwhile() -> None:
        during.extend(_latency_ms(API, 30))

    other = threading.Thread(target=meanwhile)
    other.start()
    started = time.perf_counter()
    answers["64 KB header"] = exchange(API, b"GET /health HTTP/1.1\r\nHost: edge\r\nX-Big: " + b"a" * 65536 +
                                       b"\r\n\r\n")
    answers["16 MB header"] = exchange(API, b"GET /health HTTP/1.1\r\nHost: edge\r\nX-Big: " + b"a" * 2**24 +
                                       b"\r\n\r\n")
    answers["100,000 header lines"] = exchange(API, b"GET /health HTTP/1.1\r\nHost: edge\r\n" +
                                               b"".join(b"X-H%d: v\r\n" % i for i in range(100_000)) + b"\r\n")
    refused_in = time.perf_counter() - started
    other.join()
    for answer in answers.values():
        _json_error(answer, 431, "headers_too_large")
    _json_error(exchange(API, b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: edge\r\n\r\n"), 414, "uri_too_long")
    assert max(during) < SERVED_WITHIN_MS, during
    before_ms, during_ms = statistics.median(baseline), statistics.median(during)
    figures["edge: oversized headers"] = (f"64 KB, 16 MB and 100,000-line headers refused with 431 (all three in "
                                          f"{refused_in * 1000:.0f} ms); /health meanwhile p50 {during_ms:.1f} ms "
                                          f"(before {before_ms:.1f} ms), max {max(during):.0f} ms")


def test_oversized_bodies_and_protocol_errors_are_refused_in_json():
    too_big = b"POST /predict HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    _json_error(exchange(API, too_big % (5 * 2**20)), 413, "body_too_large")
    page_upload = b"POST /predict HTTP/1.1\r\nHost: edge\r\nContent-Type: multipart/form-data; boundary=x\r\n" \
                  b"Content-Length: %d\r\n\r\n" % (3 * 2**20)
    _json_error(exchange(PAGE, page_upload), 413, "file_too_large")
    chunked = b"POST /predict HTTP/1.1\r\nHost: edge\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    _json_error(exchange(API, chunked), 400, "bad_request")
    _json_error(exchange(API, b"NOT HTTP AT ALL\r\n\r\n"), 400, "bad_request")
    _json_error(exchange(PAGE, b"GET / HTTP/1.1\r\nHost: edge\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"), 431,
                "headers_too_large")
    assert server_errors(prometheus(API)) == 0
