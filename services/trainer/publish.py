"""The end of a run (rank 0): the best epoch's model gets its temperature (fitted on the validation split), is
tested once, and is published with its metrics.json; PUBLISH_IF (``publish_gate``) decides whether it also becomes
latest.json's model. Then the run is marked completed and old models are pruned (KEEP_MODELS)."""

import logging

import torch

from services.trainer.config import TrainSettings
from services.trainer.distributed import World, per_rank_batch
from services.trainer.evaluation import classification_report, evaluate
from services.trainer.fit_temperature import calibration_report
from services.trainer.optimizer import Optimization
from services.trainer.publish_gate import decide, split_record
from services.trainer.report import build_metrics
from services.trainer.resume import mark_completed
from shared.artifacts import prune_models, publish_model, run_dir
from shared.checkpoint import build_checkpoint, load_checkpoint
from shared.data import Split

log = logging.getLogger("trainer")


def publish_best(settings: TrainSettings, device: torch.device, splits: tuple[Split, Split, Split],
                 history: list[dict], best: dict, optimization: Optimization, world: World = World()) -> int:
    """Calibrate the best epoch's model on the validation split, test it once, publish it with its metrics (as
    latest.json's model when PUBLISH_IF lets it), and mark the run completed."""
    train, val, test = splits
    best_checkpoint = load_checkpoint(run_dir(settings.artifacts_dir) / "best.pt")
    model = best_checkpoint.build_model(device).to(memory_format=torch.channels_last)
    tested, validated = evaluate(model, test, device), evaluate(model, val, device)
    temperature, calibration = calibration_report(validated, tested)
    split = split_record(val, settings.split_seed)
    decision = decide(settings.publish_if, settings.artifacts_dir, val, split, validated.accuracy, device)
    sizes = {"train": len(train), "val": len(val), "test": len(test)}
    metrics = build_metrics(model, settings, device, sizes, history, best, classification_report(tested),
                            optimization)
    metrics["calibration"] = calibration
    metrics["world_size"] = world.size  # processes that trained it (torchrun), each on BATCH_SIZE / N per step
    metrics["per_rank_batch_size"] = per_rank_batch(settings.batch_size, world)
    metrics["distributed_backend"] = world.backend
    metrics["validation_split"] = split
    checkpoint = build_checkpoint(model, hyperparameters=settings.recipe(), epoch=best["epoch"], metrics={
        key: metrics[key] for key in ("test_accuracy", "test_loss", "macro_f1", "val_accuracy", "best_epoch")},
        temperature=temperature, extra={"validation_split": split})
    metrics["model_version"] = checkpoint["model_version"]
    metrics["created_at"] = checkpoint["created_at"]
    metrics["publication"] = decision.record()
    published = publish_model(settings.artifacts_dir, checkpoint, metrics, make_latest=decision.latest)
    mark_completed(settings, published.model_version)
    prune_models(settings.artifacts_dir, settings.keep_models, settings.serving_dir)  # retention: KEEP_MODELS
    log.info("%s %s: test accuracy %.4f, macro F1 %.4f (best epoch %d, val accuracy %.4f); temperature %.3f, "
             "test ECE %.4f -> %.4f", "published" if decision.latest else "kept on disk, NOT made latest:",
             published.model_version, metrics["test_accuracy"], metrics["macro_f1"], best["epoch"],
             best["val_accuracy"], temperature, calibration["test"]["before"]["ece"],
             calibration["test"]["after"]["ece"])
    (log.info if decision.latest else log.warning)("PUBLISH_IF=%s: %s", settings.publish_if, decision.reason)
    return 0
