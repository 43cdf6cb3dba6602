"""Distributed training: the same run on the real data as 1 process and as N processes under torchrun.

Both runs use the same settings (``EPOCHS``, global ``BATCH_SIZE`` 128, LR, seed, ``DEVICE=cpu``) and the same
number of CPU threads in all: the single process gets N x T threads, each of the N torchrun ranks T (gloo,
DistributedDataParallel). Goal: test accuracy within 0.5 points of each other. The wall and training times are
recorded too; on a machine whose cores are all shared by the ranks (2 here) N processes cannot be faster than
one process with the same threads, so the time figures show the cost of the gradient all-reduce, not a speed-up.

Cheap by default (2 epochs); settable: BENCH_DDP_EPOCHS, BENCH_DDP_PROCESSES (2), BENCH_DDP_THREADS (threads per
rank; default: this machine's cores / N, at least 1), BENCH_DATA_DIR.
"""

import json
import os
import subprocess
import sys
import time

from bench.common import REPO_ROOT, data_dir, save_result

ARTIFACTS = REPO_ROOT / "bench" / "artifacts"
GOAL_POINTS = 0.5


def train(processes: int, threads: int, epochs: int) -> dict:
    """One training run into bench/artifacts/ddp-<processes>; its metrics and wall time."""
    artifacts = ARTIFACTS / f"ddp-{processes}"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DATA_DIR": str(data_dir()), "ARTIFACTS_DIR": str(artifacts),
           "DOWNLOAD": "false", "RETRAIN": "1", "EPOCHS": str(epochs), "DEVICE": "cpu", "NUM_THREADS": str(threads),
           "OMP_NUM_THREADS": str(threads), "KEEP_MODELS": "1"}
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] if processes > 1 else []
    started = time.perf_counter()
    subprocess.run([sys.executable, *launcher, "-m", "services.trainer"], cwd=REPO_ROOT, env=env, check=True)
    wall = time.perf_counter() - started
    metrics = json.loads((artifacts / "metrics.json").read_text())
    images = sum(epoch["images"] for epoch in metrics["history"])
    return {
        "processes": metrics["world_size"],
        "threads_each": threads,
        "global_batch": metrics["batch_size"],
        "batch_per_process": metrics["per_rank_batch_size"],
        "epochs": metrics["epochs"],
        "val_accuracy_%": 100 * metrics["val_accuracy"],
        "test_accuracy_%": 100 * metrics["test_accuracy"],
        "training_s": metrics["training_seconds"],
        "train_images_per_s": images / metrics["training_seconds"],
        "wall_s": wall,
    }


def main() -> None:
    epochs = int(os.environ.get("BENCH_DDP_EPOCHS", "2"))
    processes = int(os.environ.get("BENCH_DDP_PROCESSES", "2"))
    threads = int(os.environ.get("BENCH_DDP_THREADS", max(1, (os.cpu_count() or 1) // processes)))
    single = train(1, processes * threads, epochs)
    several = train(processes, threads, epochs)
    gap = abs(several["test_accuracy_%"] - single["test_accuracy_%"])
    save_result("distributed_training", [single, several], test_accuracy_gap_points=gap,
                goal=f"test accuracy within {GOAL_POINTS} points", met=gap <= GOAL_POINTS,
                time_ratio_n_over_1=several["training_s"] / single["training_s"], cpu_count=os.cpu_count(),
                note=f"{processes} ranks x {threads} thread(s) vs 1 process x {processes * threads} threads "
                     f"on {os.cpu_count()} cores")
    print(f"test accuracy gap {gap:.2f} points (goal <= {GOAL_POINTS});  training time {processes} processes / 1 "
          f"process = {several['training_s'] / single['training_s']:.2f}")


if __name__ == "__main__":
    main()
