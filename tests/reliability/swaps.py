"""Hot swaps under load, as the reliability test and ``python -m bench swap_memory`` both run them.

Clients keep asking (three on /predict, one on /explain) while a new model is published, swap after swap, the way
the trainer does it (publish, then retention with KEEP_MODELS). Each swap lasts until the server serves the new
model, records it, and has answered a fixed number of requests with it: a count, not a time, so a slow machine
does the same work more slowly. After every swap the server's resident memory and open files are read from its
Prometheus metrics, at the same moment of the swap and under the same load.
"""

import itertools
import statistics
import threading
from dataclasses import dataclass, field
from pathlib import Path

import requests

from shared.artifacts import prune_models
from shared.serving import served_checkpoints
from tests.inference.test_reload import PIXELS, _republish_changed
from tests.reliability.conftest import count, prometheus
from tests.waiting import wait_until

ROUTES = ("/predict",) * 3 + ("/explain",)


@dataclass
class SwapRun:
    resident_mb: list[float] = field(default_factory=list)  # after each swap
    open_files: list[float] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    answered: int = 0
    failures: list[str] = field(default_factory=list)


def served_version(url: str) -> str:
    return requests.get(f"{url}/metrics", timeout=10).json()["model"]["version"]


def wait_until_served(url: str, serving_dir: Path, version: str) -> None:
    """Until the server answers with ``version`` and its serving record names it (written just after the swap)."""
    wait_until(lambda: served_version(url) == version and served_checkpoints(serving_dir) == {f"models/{version}.pt"},
               f"{version} to be served and recorded")


def swaps_under_load(url: str, artifacts: Path, serving: Path, swaps: int, keep: int,
                     answers_per_swap: int) -> SwapRun:
    run, stop, counting = SwapRun(), threading.Event(), threading.Lock()

    def client(route: str) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    answer = session.post(f"{url}{route}", json={"pixels": PIXELS}, timeout=30)
                    if answer.status_code != 200:
                        run.failures.append(f"{route}: {answer.status_code} {answer.text[:200]}")
                except requests.RequestException as error:
                    run.failures.append(f"{route}: {error!r}")
                with counting:
                    run.answered += 1

    clients = [threading.Thread(target=client, args=(route,)) for route in ROUTES]
    for thread in clients:
        thread.start()
    try:
        for _ in range(swaps):
            version = _republish_changed(artifacts)
            wait_until_served(url, serving, version)
            prune_models(artifacts, keep, serving)  # what the trainer does after each publish
            wait_until(lambda target=run.answered + answers_per_swap: run.answered >= target,
                       f"{answers_per_swap} answers from {version}")
            samples = prometheus(url)
            run.resident_mb.append(count(samples, "process_resident_memory_bytes") / 2**20)
            run.open_files.append(count(samples, "process_open_fds"))
            run.versions.append(version)
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    return run


def theil_sen_slope(ys: list[float]) -> float:
    """The median slope between every two points of ``ys`` (x = 0, 1, 2, ...): a trend that outliers and steps
    barely move."""
    return statistics.median((ys[j] - ys[i]) / (j - i) for i, j in itertools.combinations(range(len(ys)), 2))
