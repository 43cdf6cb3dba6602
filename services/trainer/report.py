"""metrics.json: what the trainer records about a finished run, for the inference API and the frontend.

The optimizer, schedule and augmentation are described from what the run used (``optimizer``, ``augment``), not
from fixed text that a change of the code could leave behind."""

import platform

import torch

from services.trainer.augment import describe_augmentation
from services.trainer.config import TrainSettings
from services.trainer.optimizer import Optimization, describe_optimizer
from shared.model import ARCHITECTURE, count_parameters, weights_size_bytes


def build_metrics(model, settings: TrainSettings, device: torch.device, sizes: dict, history: list[dict],
                  best: dict, report: dict, optimization: Optimization) -> dict:
    best_stats = history[best["epoch"] - 1]
    return {
        "architecture": ARCHITECTURE,
        "dataset_sizes": sizes,
        "parameters": count_parameters(model),
        "weights_size_bytes": weights_size_bytes(model),
        "device": str(device),
        "precision": "bf16 autocast, fp32 weights" if settings.uses_bf16(device) else "fp32",
        "optimizer": describe_optimizer(optimization.optimizer),
        "loss_function": f"CrossEntropyLoss (label_smoothing={settings.label_smoothing})",
        "learning_rate": settings.lr,
        "lr_schedule": optimization.schedule,
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
        "augmentation": describe_augmentation(settings.max_shift),
        "seed": settings.seed,
        "best_epoch": best["epoch"],
        "final_train_loss": best_stats["train_loss"],
        "final_val_loss": best_stats["val_loss"],
        "val_accuracy": best_stats["val_accuracy"],
        **report,
        "history": history,
        "training_seconds": sum(epoch["seconds"] for epoch in history),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
    }
