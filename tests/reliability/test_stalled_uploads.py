"""Uploads that stall half way cost other clients nothing: a request counts as arriving for the micro-batcher
only once its body is complete, so a batch never waits MAX_BATCH_WAIT_MS for a client that is not sending.

Measured relative to a baseline taken in the same run, interleaved (baseline, stalled, baseline, ...), with
hundreds of sequential requests per phase, so a loaded machine shifts both phases alike and the medians hold.
"""

import statistics
import time

import requests

from tests.reliability.clients import JSON_BODY, partial_upload

STALLED = 200
ROUNDS = 3
REQUESTS_PER_PHASE = 120
TOLERANCE_MS = 1.0  # the default MAX_BATCH_WAIT_MS is 2: a batch that waited for the stalled ones adds 2 ms


def _latencies(session: requests.Session, url: str, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        answer = session.post(f"{url}/predict", data=JSON_BODY, headers={"Content-Type": "application/json"},
                              timeout=10)
        latencies.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
    return latencies


def test_stalled_uploads_do_not_slow_other_clients(server, figures):
    baseline, stalled = [], []
    with requests.Session() as session:
        _latencies(session, server, 50)  # warm up the connection, the model and the allocator
        for _ in range(ROUNDS):
            baseline += _latencies(session, server, REQUESTS_PER_PHASE)
            sockets = [partial_upload(server) for _ in range(STALLED)]
            time.sleep(0.3)  # all of them are inside the route, waiting for the rest of their bodies
            try:
                stalled += _latencies(session, server, REQUESTS_PER_PHASE)
            finally:
                for sock in sockets:
                    sock.close()
            time.sleep(0.3)
    base_ms, stalled_ms = statistics.median(baseline) * 1000, statistics.median(stalled) * 1000
    figures["stalled uploads"] = (f"{STALLED} uploads stalled mid-body: unrelated p50 {stalled_ms:.2f} ms vs "
                                  f"{base_ms:.2f} ms without them ({len(stalled)} requests each)")
    assert stalled_ms - base_ms < TOLERANCE_MS, f"p50 {stalled_ms:.2f} ms with stalled uploads, {base_ms:.2f} without"
