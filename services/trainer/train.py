"""Train FashionMNISTModelV2, pick the best epoch on a validation split, test it once, publish it.

Every epoch (``loop``) ends with two atomic writes to ``<artifacts>/run/`` (``resume``): ``best.pt`` when validation
accuracy improved, then ``last.pt`` (model, optimizer, scheduler, history) for resuming. A run that is killed, or
stopped with SIGTERM (``signals``), continues from its last completed epoch when started again with the same
settings. After the last epoch the best checkpoint gets its temperature (fitted on the validation split, see
``fit_temperature``), is evaluated on the test set and published with its metrics (``publish``); PUBLISH_IF
(``publish_gate``) decides whether it also becomes latest.json's model.
While it runs, ``progress`` keeps ``<artifacts>/training.json`` up to date (epoch, step, time left, history, and
how the run ended) for the API's ``GET /training`` and the page.

Started by torchrun with several processes (``WORLD_SIZE`` > 1) the same loop runs data-parallel
(``distributed``): each rank trains on its shard of every global batch, validation is sharded and summed, and
rank 0 alone reads and writes the artifacts directory.
"""

import logging
import signal
import sys

import torch
from torch.nn.parallel import DistributedDataParallel

from services.trainer.cards import add_missing_cards
from services.trainer.config import TrainSettings
from services.trainer.distributed import (
    DistributedSetupError,
    World,
    init,
    on_main,
    per_rank_batch,
    shard,
    shutdown,
    world_from_env,
)
from services.trainer.loop import train_one_epoch, validate
from services.trainer.optimizer import make_optimizer
from services.trainer.progress import TrainingProgress, open_progress, published_by_run
from services.trainer.publish import publish_best
from services.trainer.resume import restore, resume_state, save_epoch
from services.trainer.signals import StopFlag, StopRequested
from services.trainer.splits import load_data_once
from shared.checkpoint import CheckpointError
from shared.data import DatasetNotFoundError
from shared.device import DeviceUnavailableError, resolve_device
from shared.model import FashionMNISTModelV2

log = logging.getLogger("trainer")


def run(settings: TrainSettings, stop: StopFlag, world: World = World()) -> int:
    """Train, then publish; ``world`` > 1 process: this is one rank of a torchrun job (see ``distributed``)."""
    torch.manual_seed(settings.seed)
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    device = world.device_for(resolve_device(settings.device))
    per_rank_batch(settings.batch_size, world)  # the same check on every rank, before any of them waits
    world = init(world, device)
    try:
        return train_and_publish(settings, stop, world, device)
    finally:
        shutdown(world)


def train_and_publish(settings: TrainSettings, stop: StopFlag, world: World, device: torch.device) -> int:
    on_main(world, lambda: add_missing_cards(settings.artifacts_dir))  # models published before graph cards
    state = on_main(world, lambda: resume_state(settings), errors=(CheckpointError,))
    if state is not None and state.get("completed"):
        log.info("these settings already finished (model %s); set RETRAIN=1 to train again",
                 state.get("published_version"))
        return 0
    # training.json (rank 0): running from here on, then finished, interrupted (SIGTERM) or failed (an exception)
    with open_progress(settings, device, world, state, interruptions=(StopRequested,)) as progress:
        code = train_then_finish(settings, stop, world, device, state, progress)
        if world.is_main:
            progress.finished(*published_by_run(settings.artifacts_dir))
        return code


def train_then_finish(settings: TrainSettings, stop: StopFlag, world: World, device: torch.device, state: dict | None,
                      progress: TrainingProgress) -> int:
    train, val, test = load_data_once(settings, world)
    model = FashionMNISTModelV2().to(device).to(memory_format=torch.channels_last)
    steps_per_epoch = -(-len(shard(torch.arange(len(train)), world)) // per_rank_batch(settings.batch_size, world))
    optimization = make_optimizer(model, settings, steps_per_epoch)
    optimizer, scheduler = optimization.optimizer, optimization.scheduler
    history, best = restore(state, model, optimizer, scheduler)
    if state is not None:
        log.info("resuming after epoch %d of %d", state["epoch"], settings.epochs)
    # DDP averages the gradients of every step over the ranks; checkpoints and evaluation use the bare model.
    trained = model if not world.distributed else DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
    precision = "bf16 autocast" if settings.uses_bf16(device) else "fp32"
    log.info("training on %s (%s): %d train / %d val / %d test images%s", device, precision, len(train), len(val),
             len(test), f"; {world.size} processes ({world.backend}), "
                        f"{per_rank_batch(settings.batch_size, world)} images per process per step"
             if world.distributed else "")
    progress.begin(settings.epochs, steps_per_epoch, {"train": len(train), "val": len(val), "test": len(test)})
    for epoch in range(len(history) + 1, settings.epochs + 1):
        lr = scheduler.get_last_lr()[0]
        progress.begin_epoch(epoch)
        stats = train_one_epoch(trained, optimizer, scheduler, train, settings, epoch, stop, world, progress)
        progress.validating()
        val_loss, val_accuracy = validate(model, val, device, world)
        stats.update(epoch=epoch, val_loss=val_loss, val_accuracy=val_accuracy, lr=lr, world_size=world.size)
        history.append(stats)
        improved = val_accuracy > best["val_accuracy"]
        if improved:
            best = {"epoch": epoch, "val_accuracy": val_accuracy, "val_loss": val_loss}
        if world.is_main:
            save_epoch(settings, model, optimizer, scheduler, stats, history, best, progress.run_id)
        log.info("epoch %d/%d  train loss %.4f acc %.4f | val loss %.4f acc %.4f | lr %.2e | %.1fs%s",
                 epoch, settings.epochs, stats["train_loss"], stats["train_accuracy"], val_loss,
                 val_accuracy, lr, stats["seconds"], "  *best*" if improved else "")
        progress.end_epoch(history)
    progress.finishing()
    # Rank 0 calibrates, tests, publishes and prunes; the others wait for its outcome.
    return on_main(world, lambda: publish_best(settings, device, (train, val, test), history, best, optimization,
                                               world), errors=(CheckpointError,))


def main(argv: list[str] | None = None) -> int:
    world = world_from_env()  # torchrun's WORLD_SIZE / RANK / LOCAL_RANK; one process without them
    rank = f"[rank {world.rank}/{world.size}] " if world.distributed else ""
    logging.basicConfig(level=logging.INFO if world.is_main else logging.WARNING,
                        format=f"%(asctime)s %(name)s {rank}%(levelname)s %(message)s")
    settings = TrainSettings(_cli_parse_args=sys.argv[1:] if argv is None else argv)
    stop = StopFlag()
    stop.install()
    try:
        return run(settings, stop, world)
    except StopRequested:
        log.info("stopped; the last completed epoch is saved, run again with the same settings to resume")
        return 128 + signal.SIGTERM
    except (DatasetNotFoundError, CheckpointError, DeviceUnavailableError, DistributedSetupError) as error:
        log.error("%s", error)
        return 2
