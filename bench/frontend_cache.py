"""What the Redis cache buys the "Random sample" button (``python -m bench frontend_cache``).

The server-side time to answer ``/sample?index=N`` through the Flask app (its test client: no network between
client and app), with a real redis-server and a real ``python -m services.inference`` serving the default model.
A miss asks the API for the test image with its prediction and explanation (one call) and stores the result; a
hit reads it back from Redis. The API's /metrics is cached for the whole run (METRICS_TTL_S=600) so only
the sample cache differs between the two rows; the same indexes are asked for in both.
Settings: BENCH_REQUESTS (per row, default 200), BENCH_MODEL_DIR (default models/default), BENCH_DATA_DIR
(default ../shared/data beside the checkout, else data).
"""

import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import data_dir, model_dir, save_result
from services.frontend.app import create_app
from services.frontend.app.config import Settings
from tests.processes import InferenceServer, RedisServer

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timed_requests(client, indexes: range, expected: str) -> list[float]:
    """Milliseconds per request; every answer must be a 200 with the expected X-Cache."""
    times = []
    for index in indexes:
        started = time.perf_counter()
        response = client.get(f"/sample?index={index}")
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.headers["X-Cache"] == expected, (index, response.headers["X-Cache"])
    return times


def row(kind: str, times: list[float]) -> dict:
    return {"request": f"/sample?index=N, cache {kind}", "requests": len(times),
            "p50_ms": statistics.median(times), "p95_ms": percentile(times, 0.95),
            "mean_ms": statistics.fmean(times), "max_ms": max(times)}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-frontend-") as tmp:
        workdir = Path(tmp)
        (workdir / "artifacts").mkdir()
        redis_server = RedisServer(workdir).start()
        inference = InferenceServer(workdir, wait_for="/ready", ARTIFACTS_DIR=workdir / "artifacts",
                                    DEFAULT_MODEL_DIR=model_dir(), DATA_DIR=data_dir(), THREADS="1",
                                    LOG_LEVEL="warning")
        try:
            inference.start()
            settings = Settings(inference_url=inference.url, redis_url=redis_server.url,
                                cache_prefix="bench:", secret_key="bench", metrics_ttl_s=600, sample_ttl_s=3600)
            client = create_app(settings).test_client()
            warm = client.get(f"/sample?index={REQUESTS}")  # opens connections and caches /metrics
            assert warm.status_code == 200, warm.get_data(as_text=True)
            model_version = warm.json["model_version"]
            misses = timed_requests(client, range(REQUESTS), "miss")
            hits = timed_requests(client, range(REQUESTS), "hit")
        finally:
            inference.stop()
            redis_server.stop()
    rows = [row("miss", misses), row("hit", hits)]
    save_result("frontend_cache", rows, model_version=model_version, model_dir=str(model_dir()),
                speedup_p50=rows[0]["p50_ms"] / rows[1]["p50_ms"],
                method="Flask test client in-process; real redis-server; real inference API process (THREADS=1)")
    print(f"cache hit is {rows[0]['p50_ms'] / rows[1]['p50_ms']:.1f}x faster at the median")


if __name__ == "__main__":
    main()
