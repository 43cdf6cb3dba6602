"""Clients that go away mid-body, or send a broken one, are not server errors: no 5xx in the metrics, one short
log line each at most, no traceback, and everyone else is served meanwhile."""

import time

import requests

from tests.reliability.clients import JSON_BODY, abort, exchange, partial_upload, status_of
from tests.reliability.conftest import count, prometheus, server_errors, server_log
from tests.waiting import wait_until

CLIENTS = 200
UNRELATED = 100  # requests of an unrelated client while the dropped ones are being cleaned up


def in_progress(url: str) -> float:
    """Requests inside the server, the scrape that asks included."""
    return count(prometheus(url), "inference_http_requests_in_progress")


def test_clients_dropping_mid_body_are_counted_as_499_not_as_server_errors(server, log_dir, figures):
    log = server_log(log_dir, server)
    before, log_lines = prometheus(server), len(log.read_text().splitlines())
    dropped_before = count(before, "inference_http_requests_total", route="/predict", status="499")
    # Half close politely (FIN), half reset; one says it was forwarded for another address (a trusted peer: the
    # log names that address, so the proxy headers reach the app).
    sockets = [partial_upload(server, headers={"X-Forwarded-For": "203.0.113.9"} if i == 0 else None)
               for i in range(CLIENTS)]
    wait_until(lambda: in_progress(server) >= CLIENTS + 1, "every upload to be inside the app, waiting for its body")
    with requests.Session() as session:
        for i, sock in enumerate(sockets):
            sock.close() if i % 2 else abort(sock)
        slowest = 0.0
        for _ in range(UNRELATED):  # meanwhile, an unrelated client
            sent = time.perf_counter()
            answer = session.post(f"{server}/predict", data=JSON_BODY, timeout=10,
                                  headers={"Content-Type": "application/json"})
            slowest = max(slowest, time.perf_counter() - sent)
            assert answer.status_code == 200, answer.text
    def settled() -> bool:  # every dropped request has been counted, one way or the other
        samples = prometheus(server)
        dropped = count(samples, "inference_http_requests_total", route="/predict", status="499") - dropped_before
        return dropped + count(samples, "inference_http_requests_total", route="/predict", status="500") >= CLIENTS

    wait_until(settled, "every dropped request to be counted")
    after = prometheus(server)
    assert server_errors(after) == server_errors(before) == 0
    assert count(after, "inference_http_requests_total", route="/predict", status="499") - dropped_before == CLIENTS
    new_lines = log.read_text().splitlines()[log_lines:]
    assert len(new_lines) <= CLIENTS, new_lines[:5]
    assert not any("Traceback" in line or "ERROR" in line for line in new_lines), new_lines[:20]
    assert any("203.0.113.9" in line and "went away" in line for line in new_lines), new_lines[:3]
    figures["mid-body disconnects"] = (f"{CLIENTS} clients dropped at once: 0 server errors counted, "
                                       f"{len(new_lines)} log lines, slowest unrelated request {slowest * 1000:.0f} ms")


def test_a_bad_chunk_size_is_a_400_and_never_a_server_error(server):
    before = prometheus(server)
    answer = exchange(server, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
    assert status_of(answer) == 400, answer
    wait_until(lambda: in_progress(server) == 1, "the broken request to be done with (and counted, if it was one)")
    assert server_errors(prometheus(server)) == server_errors(before) == 0
    assert requests.get(f"{server}/health", timeout=5).status_code == 200
