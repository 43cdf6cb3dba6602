"""What 200 uploads stalled in mid-body cost unrelated clients (``python -m bench stalled_uploads``).

A real ``python -m services.inference`` with its default batching (MAX_BATCH_WAIT_MS 2) serves the shipped model
on one model thread. One client sends /predict requests one after another; between its phases 200 raw sockets
announce a 100 kB body, send 1 kB of it and stop. The phases are interleaved (baseline, stalled, baseline, ...)
so that a machine busy with other work shifts both alike. Goal: the stalls add under 1 ms to the unrelated
median (a batch that waited for them would add the 2 ms wait). ``make test`` checks the behaviour itself without
timing it (tests/reliability/test_stalled_uploads.py). Settings: BENCH_REQUESTS (per phase, default 120),
BENCH_ROUNDS (default 3), BENCH_MODEL_DIR.
"""

import os
import statistics
import tempfile
import time
from pathlib import Path

import requests

from bench.common import goal, model_dir, save_result
from tests.processes import InferenceServer
from tests.reliability.clients import JSON_BODY, partial_upload
from tests.reliability.conftest import count, prometheus
from tests.waiting import wait_until

STALLED = 200
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "120"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TOLERANCE_MS = 1.0


def latencies_ms(session: requests.Session, url: str, count_: int) -> list[float]:
    times = []
    for _ in range(count_):
        started = time.perf_counter()
        answer = session.post(f"{url}/predict", data=JSON_BODY, headers={"Content-Type": "application/json"},
                              timeout=30)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.text
    return times


def in_progress(url: str) -> float:
    return count(prometheus(url), "inference_http_requests_in_progress")


def measure(url: str) -> tuple[list[float], list[float]]:
    baseline, stalled = [], []
    with requests.Session() as session:
        latencies_ms(session, url, 50)  # warm up the connection, the model and the allocator
        for _ in range(ROUNDS):
            baseline += latencies_ms(session, url, REQUESTS)
            sockets = [partial_upload(url) for _ in range(STALLED)]
            try:
                wait_until(lambda: in_progress(url) >= STALLED + 1, "the stalled uploads to be inside the app")
                stalled += latencies_ms(session, url, REQUESTS)
            finally:
                for sock in sockets:
                    sock.close()
            wait_until(lambda: in_progress(url) == 1, "the dropped uploads to be counted")
    return baseline, stalled


def row(phase: str, times: list[float]) -> dict:
    ordered = sorted(times)
    return {"phase": phase, "requests": len(times), "p50_ms": statistics.median(times),
            "p95_ms": ordered[round(0.95 * (len(ordered) - 1))], "max_ms": ordered[-1]}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-stalled-") as tmp, InferenceServer(
            Path(tmp), ARTIFACTS_DIR=tmp, DEFAULT_MODEL_DIR=model_dir(), DATA_DIR=tmp, THREADS="1",
            LOG_LEVEL="warning") as server:
        baseline, stalled = measure(server.url)
    rows = [row("baseline", baseline), row(f"{STALLED} uploads stalled", stalled)]
    added = rows[1]["p50_ms"] - rows[0]["p50_ms"]
    ok = added < TOLERANCE_MS
    save_result("stalled_uploads", rows, added_p50_ms=added, goal=f"stalls add < {TOLERANCE_MS} ms to the p50",
                passed=ok, method="one sequential client, phases interleaved; default MAX_BATCH_WAIT_MS 2; THREADS=1")
    print(goal(ok, f"{STALLED} stalled uploads add {added:+.2f} ms to the unrelated p50 (< {TOLERANCE_MS} ms)"))


if __name__ == "__main__":
    main()
