"""Evaluation on an in-memory split, and the classification report that goes into metrics.json."""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from shared.classes import CLASS_NAMES
from shared.data import Split
from shared.preprocess import pixels_to_batch


@dataclass(frozen=True)
class EvalResult:
    loss: float
    accuracy: float
    predictions: np.ndarray
    labels: np.ndarray
    logits: np.ndarray  # float32 (N, 10): what the calibration is fitted and measured on


@torch.inference_mode()
def evaluate(model: torch.nn.Module, split: Split, device: torch.device, batch_size: int = 1000) -> EvalResult:
    """Mean cross-entropy (no label smoothing) and accuracy of ``model`` on ``split``."""
    model.eval()
    total_loss = 0.0
    all_logits = []
    for start in range(0, len(split), batch_size):
        images = split.images[start:start + batch_size].to(device)
        labels = split.labels[start:start + batch_size].to(device)
        logits = model(pixels_to_batch(images).contiguous(memory_format=torch.channels_last))
        total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
        all_logits.append(logits.float().cpu())
    logits = torch.cat(all_logits).numpy()
    predicted = logits.argmax(axis=1)
    labels = split.labels.numpy()
    return EvalResult(
        loss=total_loss / len(split),
        accuracy=float((predicted == labels).mean()),
        predictions=predicted,
        labels=labels,
        logits=logits,
    )


def classification_report(result: EvalResult) -> dict:
    """Macro and per-class precision/recall/F1 and the confusion matrix (rows: true, columns: predicted)."""
    class_ids = list(range(len(CLASS_NAMES)))
    precision, recall, f1, support = precision_recall_fscore_support(
        result.labels, result.predictions, labels=class_ids, zero_division=0
    )
    macro = precision_recall_fscore_support(
        result.labels, result.predictions, labels=class_ids, average="macro", zero_division=0
    )
    return {
        "test_loss": result.loss,
        "test_accuracy": result.accuracy,
        "macro_precision": float(macro[0]),
        "macro_recall": float(macro[1]),
        "macro_f1": float(macro[2]),
        "per_class": [
            {
                "class_id": i,
                "label": CLASS_NAMES[i],
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i in class_ids
        ],
        "confusion_matrix": confusion_matrix(result.labels, result.predictions, labels=class_ids).tolist(),
    }
