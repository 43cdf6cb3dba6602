"""A new model every couple of seconds while clients keep asking: no request fails, memory and open files stay
flat, and retention (KEEP_MODELS) deletes old models meanwhile without ever touching the one being served."""

import shutil
import threading
import time

import requests

from shared.artifacts import prune_models, read_manifest
from shared.serving import served_checkpoints
from tests.inference.test_reload import PIXELS, _republish_changed
from tests.reliability.conftest import count, prometheus

SWAPS = 12
KEEP = 3


def _served_version(url: str) -> str:
    return requests.get(f"{url}/metrics", timeout=5).json()["model"]["version"]


def _wait_until_served(url: str, serving_dir, version: str, timeout: float = 20.0) -> None:
    """Until the server answers with ``version`` and its serving record names it (written just after the swap)."""
    deadline = time.monotonic() + timeout
    while _served_version(url) != version or served_checkpoints(serving_dir) != {f"models/{version}.pt"}:
        assert time.monotonic() < deadline, f"{version} was never served (records: {served_checkpoints(serving_dir)})"
        time.sleep(0.05)


def test_model_swaps_under_load_fail_nothing_and_keep_memory_flat(start_server, tiny_artifacts, tmp_path, figures):
    artifacts, serving = tmp_path / "artifacts", tmp_path / "serving"
    shutil.copytree(tiny_artifacts, artifacts)
    stop, failures, answered = threading.Event(), [], [0]

    def client(route: str) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    answer = session.post(f"{url}{route}", json={"pixels": PIXELS}, timeout=10)
                    if answer.status_code != 200:
                        failures.append(f"{route}: {answer.status_code} {answer.text[:200]}")
                except requests.RequestException as error:
                    failures.append(f"{route}: {error!r}")
                answered[0] += 1

    with start_server(ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=tmp_path / "none", DATA_DIR=tmp_path / "none",
                      SERVING_DIR=serving, RELOAD_INTERVAL_S="0.2", THREADS="1") as url:
        clients = [threading.Thread(target=client, args=(route,)) for route in ["/predict"] * 3 + ["/explain"]]
        for thread in clients:
            thread.start()
        try:
            for swap in range(1, SWAPS + 1):
                started = time.monotonic()
                version = _republish_changed(artifacts)
                _wait_until_served(url, serving, version)
                prune_models(artifacts, KEEP, serving)  # what the trainer does after each publish
                if swap == 4:  # warmed up: allocator, caches and thread pools have their working size
                    warm = prometheus(url)
                if swap == SWAPS:  # the same moment of a swap, under the same load
                    end = prometheus(url)
                time.sleep(max(0.0, 1.5 - (time.monotonic() - started)))
        finally:
            stop.set()
            for thread in clients:
                thread.join()
        assert read_manifest(artifacts).model_version == _served_version(url) == version
    assert failures == [], failures[:5]
    assert answered[0] > 100
    assert count(end, "inference_model_reloads_total", outcome="loaded") == SWAPS + 1
    kept = sorted(path.name for path in (artifacts / "models").glob("*"))
    assert len(kept) == 3 * KEEP and f"{version}.pt" in kept, kept  # checkpoints, their graphs and metrics
    assert list(serving.glob("*.json")) == [], "a stopped server removes its serving record"
    grown_mb = (count(end, "process_resident_memory_bytes") - count(warm, "process_resident_memory_bytes")) / 2**20
    fds = count(end, "process_open_fds") - count(warm, "process_open_fds")
    figures["model swaps under load"] = (f"{SWAPS} swaps in {SWAPS * 1.5:.0f} s, {answered[0]} requests: "
                                         f"{len(failures)} failed; resident memory {grown_mb:+.1f} MB and open files "
                                         f"{fds:+.0f} from swap 4 to {SWAPS}; {KEEP} models kept on disk")
    assert grown_mb < 30, f"resident memory grew {grown_mb:.1f} MB over {SWAPS - 4} swaps"
    assert abs(fds) <= 4, f"open files changed by {fds:+.0f}"
