"""Data-parallel training across processes: ``torchrun --nproc_per_node=N -m services.trainer``.

torchrun (``python -m torch.distributed.run``) starts N copies of the trainer with ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK`` set. With ``WORLD_SIZE`` > 1 each copy joins a process group (gloo on the CPU, NCCL on CUDA, one GPU
per process: ``cuda:<LOCAL_RANK>``) and wraps the model in DistributedDataParallel, which averages the gradients of
every step across the processes. Without torchrun (or with N = 1) nothing here is used and training is the plain
single-process loop.

The rules, chosen so that N processes compute what one process would:

* ``BATCH_SIZE`` is the global batch; each rank takes ``BATCH_SIZE / N`` images of it (it must divide evenly).
  The learning rate is unchanged because the global batch is.
* Every epoch all ranks draw the same seeded permutation of the training set and rank r takes every N-th image
  from position r (``shard``: DistributedSampler's rule, padded by repeating the first few images so every rank
  has the same number of steps). Step k of all ranks together is then exactly batch k of the one-process order.
* Stop decisions are collective: before every step the ranks all-reduce their stop flags (``any_rank``), so a
  SIGTERM that reaches one rank stops all of them after the same step and none waits forever for the others.
* Only rank 0 touches the artifacts directory (checkpoints, metrics, publishing, retention); it hands the resume
  state to the others (``broadcast``).
"""

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from shared.device import DeviceUnavailableError

log = logging.getLogger("trainer")

# Long enough for rank 0 to calibrate, test and publish while the others wait for it.
TIMEOUT = timedelta(minutes=30)


class DistributedSetupError(ValueError):
    """Settings that cannot be split across the processes (e.g. a batch that does not divide by their number)."""


@dataclass(frozen=True)
class World:
    """Where this process stands: its rank among ``size`` processes (size 1: plain training, no process group)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device_for(self, device: torch.device) -> torch.device:
        """The device this rank trains on: ``cuda:<LOCAL_RANK>`` when training on CUDA with several processes."""
        if not self.distributed or device.type != "cuda":
            return device
        if self.local_rank >= torch.cuda.device_count():
            raise DeviceUnavailableError(f"LOCAL_RANK {self.local_rank} but only {torch.cuda.device_count()} CUDA "
                                         "device(s): start at most one process per GPU (--nproc_per_node)")
        return torch.device("cuda", self.local_rank)


def world_from_env(env: dict[str, str] | None = None) -> World:
    """The world torchrun describes in the environment; size 1 when not started by torchrun."""
    env = os.environ if env is None else env
    size = int(env.get("WORLD_SIZE", "1"))
    return World(rank=int(env.get("RANK", "0")), size=size, local_rank=int(env.get("LOCAL_RANK", "0")))


def init(world: World, device: torch.device) -> World:
    """Join the process group (NCCL for CUDA, gloo for the CPU); a no-op for a single process."""
    if not world.distributed:
        return world
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, timeout=TIMEOUT,
                            **({"device_id": device} if device.type == "cuda" else {}))
    log.info("rank %d of %d joined the %s process group on %s", world.rank, world.size, backend, device)
    return replace(world, backend=backend)


def shutdown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def per_rank_batch(batch_size: int, world: World) -> int:
    """BATCH_SIZE is the global batch; each of the N ranks takes BATCH_SIZE / N of it."""
    if batch_size % world.size:
        raise DistributedSetupError(f"BATCH_SIZE {batch_size} does not divide among {world.size} processes: "
                                    f"use a multiple of {world.size} (it is the global batch)")
    return batch_size // world.size


def shard(order: torch.Tensor, world: World) -> torch.Tensor:
    """This rank's part of an epoch's ``order``: positions rank, rank + N, ... after padding ``order`` to a
    multiple of N with its own first elements (as DistributedSampler does), so every rank gets the same count."""
    padding = -len(order) % world.size
    if padding:
        order = torch.cat([order, order[:padding]])
    return order[world.rank::world.size]


def any_rank(flag: bool, world: World, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on at least one (an all-reduce; every rank must call it)."""
    if not world.distributed:
        return flag
    tensor = torch.tensor([int(flag)], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def sum_across(values: list[float], world: World, device: torch.device) -> list[float]:
    """Element-wise sums over the ranks (float64, so counts stay exact)."""
    if not world.distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def broadcast(value: Any, world: World) -> Any:
    """Rank 0's ``value`` on every rank (pickled over the process group; rank 0's own state only)."""
    if not world.distributed:
        return value
    box = [value if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def on_main(world: World, work: Callable[[], Any], errors: tuple[type[Exception], ...] = ()) -> Any:
    """Run ``work`` on rank 0 only and hand its result, or one of its ``errors``, to every rank, so the others
    wait for it instead of racing it and all of them fail the same way."""
    if not world.distributed:
        return work()
    outcome: tuple[Any, Exception | None] | None = None
    if world.is_main:
        try:
            outcome = (work(), None)
        except errors as error:
            outcome = (None, error)
    result, error = broadcast(outcome, world)
    if error is not None:
        raise error
    return result
