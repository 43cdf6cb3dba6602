"""The CUDA side of distributed training, on whatever GPUs this machine has (``make ddp-gpu-check``).

1. Always: the trainer's distributed code path on one GPU as a world of one rank: an NCCL process group,
   DistributedDataParallel with ``device_ids=[0]``, the per-step stop all-reduce and the sharded validation on
   CUDA tensors, the resume state broadcast, then publishing. (NCCL refuses two ranks on the same GPU, so one GPU
   can check every call but not the traffic between ranks.)
2. With two or more GPUs: the real thing, ``torchrun --standalone --nproc_per_node=2 -m services.trainer`` with
   ``DEVICE=cuda`` (one GPU per rank, ``cuda:<LOCAL_RANK>``).
Each trains ``--epochs`` (1) on ``--data-dir`` (tiny generated IDX data when not given) and must publish exactly one
model whose metrics say NCCL. Exit status 0 = all fine, 2 = no CUDA device.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from services.trainer.config import TrainSettings
from services.trainer.distributed import World
from services.trainer.signals import StopFlag
from services.trainer.train import run
from shared.artifacts import read_manifest
from tests.idx import write_fashion_mnist
from tests.processes import REPO_ROOT, free_port, python_path


@dataclass(frozen=True)
class WorldOfOne(World):
    """One rank that still takes the distributed path (a process group, DDP, collectives)."""

    @property
    def distributed(self) -> bool:
        return True


def check_published(artifacts: Path, world_size: int) -> dict:
    published = read_manifest(artifacts)
    assert published is not None, f"nothing published in {artifacts}"
    assert len(list((artifacts / "models").glob("*.pt"))) == 1, "expected exactly one published model"
    metrics = json.loads((artifacts / "metrics.json").read_text())
    assert metrics["distributed_backend"] == "nccl" and metrics["world_size"] == world_size, metrics
    assert metrics["device"].startswith("cuda"), metrics["device"]
    return {key: metrics[key] for key in ("world_size", "per_rank_batch_size", "distributed_backend", "device",
                                          "precision", "val_accuracy", "test_accuracy", "training_seconds")}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="make ddp-gpu-check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="torchvision root with FashionMNIST/raw/ (default: tiny data)")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: torch", torch.__version__, "sees none", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="ddp-gpu-check-"))
    data_dir = args.data_dir or write_fashion_mnist(work / "data", train_count=6000, test_count=1000)
    common = dict(data_dir=data_dir, download=False, epochs=args.epochs, device="cuda", val_size=1000)

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), RANK="0", WORLD_SIZE="1")
    assert run(TrainSettings(artifacts_dir=work / "one", **common), StopFlag(), WorldOfOne()) == 0
    print("world of one (NCCL, DDP on cuda:0):", json.dumps(check_published(work / "one", 1)))

    if torch.cuda.device_count() < 2:
        print(f"{torch.cuda.device_count()} GPU: two-rank torchrun skipped (needs 2 GPUs)")
        return 0
    env = {**os.environ, "PYTHONPATH": python_path(), "DATA_DIR": str(data_dir), "ARTIFACTS_DIR": str(work / "two"),
           "DOWNLOAD": "false", "EPOCHS": str(args.epochs), "DEVICE": "cuda", "VAL_SIZE": "1000"}
    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"):
        env.pop(name)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                    "services.trainer"], cwd=REPO_ROOT, env=env, check=True)
    print("torchrun, 2 GPUs:", json.dumps(check_published(work / "two", 2)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
