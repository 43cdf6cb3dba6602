"""Does resident memory grow with hot swaps? Noise against a leak, measured (``python -m bench swap_memory``).

Two rows. ``served``: a real ``python -m services.inference`` (one worker, THREADS=1) gets BENCH_SWAPS new models
(default 100) while three clients call /predict and one /explain, 50 answers per model (``tests/reliability/
swaps.py``, what the reliability test runs for 40 swaps); its resident memory (Prometheus) after every swap gives
the trend over the swaps after the first 10 (Theil-Sen and least squares), and the steepest Theil-Sen trend of any
30 consecutive swaps (the window the test judges). ``leaked``: what a leak would look like, for scale: the
service's ``ModelStore`` in this process, swapping the same way but with every swapped-out model kept alive; its
anonymous resident memory per swap is what one leaked model costs. Goal: the served window trend stays below the
test's bound (2 MB a swap), which stays below a third of the leak.
BENCH_MODEL_DIR (default models/default) is the model republished with changed weights at every swap.
"""

import os
import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench.common import goal, model_dir, save_result
from services.inference.app.model_store import ModelStore
from shared.artifacts import prune_models
from tests.inference.test_reload import _republish_changed
from tests.processes import InferenceServer
from tests.reliability.swaps import swaps_under_load, theil_sen_slope

SWAPS = int(os.environ.get("BENCH_SWAPS", "100"))
WARM_UP, WINDOW, LEAK_SWAPS = 10, 30, 30
BOUND_MB = 2.0  # tests/reliability/test_model_swaps.py


def least_squares_slope(ys: list[float]) -> float:
    return float(np.polyfit(np.arange(len(ys)), ys, 1)[0])


def served(workdir: Path) -> dict:
    artifacts, serving = workdir / "artifacts", workdir / "serving"
    shutil.copytree(model_dir(), artifacts)
    with InferenceServer(workdir, ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=workdir / "none",
                         DATA_DIR=workdir / "none", SERVING_DIR=serving, RELOAD_INTERVAL_S="0.05", THREADS="1",
                         LOG_LEVEL="warning") as server:
        run = swaps_under_load(server.url, artifacts, serving, SWAPS, keep=3, answers_per_swap=50)
    assert not run.failures, run.failures[:5]
    measured = run.resident_mb[WARM_UP:]
    windows = [theil_sen_slope(measured[start:start + WINDOW]) for start in range(len(measured) - WINDOW + 1)]
    return {"row": "served", "swaps": SWAPS, "requests": run.answered, "failed": len(run.failures),
            "rss_first_mb": run.resident_mb[0], "rss_min_mb": min(measured), "rss_max_mb": max(measured),
            "rss_last_mb": run.resident_mb[-1], "theil_sen_mb_per_swap": theil_sen_slope(measured),
            "least_squares_mb_per_swap": least_squares_slope(measured),
            "steepest_window_mb_per_swap": max(windows), "resident_mb": run.resident_mb}


def anonymous_resident_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("RssAnon")).split()[1]) / 1024


def leaked(workdir: Path) -> dict:
    artifacts = workdir / "leak-artifacts"
    shutil.copytree(model_dir(), artifacts)
    store = ModelStore(artifacts, workdir / "none", torch.device("cpu"), threads=1)
    store.poll()
    kept, resident, batch = [], [], np.zeros((16, 28, 28), np.uint8)
    for _ in range(LEAK_SWAPS):
        _republish_changed(artifacts)
        assert store.poll()
        prune_models(artifacts, 3)
        for _ in range(5):
            store.current.backend.logits(batch)
        kept.append(store.current)  # the leak: nothing swapped out is ever freed
        resident.append(anonymous_resident_mb())
    return {"row": "leaked (every model kept)", "swaps": LEAK_SWAPS,
            "theil_sen_mb_per_swap": theil_sen_slope(resident), "least_squares_mb_per_swap":
            least_squares_slope(resident), "rss_first_mb": resident[0], "rss_last_mb": resident[-1]}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-swap-memory-") as tmp:
        rows = [served(Path(tmp)), leaked(Path(tmp))]
    series = rows[0].pop("resident_mb")
    steepest, leak = rows[0]["steepest_window_mb_per_swap"], rows[1]["theil_sen_mb_per_swap"]
    ok = steepest < BOUND_MB <= leak / 3
    save_result("swap_memory", rows, resident_mb_per_swap=series, bound_mb_per_swap=BOUND_MB, passed=ok,
                goal=f"steepest {WINDOW}-swap trend < {BOUND_MB} MB a swap <= a third of a leaked model's",
                median_rss_mb=statistics.median(series))
    print(goal(ok, f"steepest {WINDOW}-swap trend {steepest:+.2f} MB a swap < bound {BOUND_MB} <= a third of the "
                   f"leak ({leak:.2f} MB a swap)"))


if __name__ == "__main__":
    main()
