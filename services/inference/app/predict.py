"""Pixels in, results out: the prediction maths as plain functions, usable without HTTP or a batcher."""

import numpy as np
import torch
from torch import nn

from shared.calibration import calibrated_softmax
from shared.classes import CLASS_NAMES
from shared.preprocess import pixels_to_batch


def predict_probabilities(model: nn.Module, pixels: torch.Tensor, device: torch.device,
                          temperature: float) -> np.ndarray:
    """uint8 pixels (N, 28, 28) on the CPU -> calibrated class probabilities (N, 10) as float32 numpy.

    The pixels move to ``device`` once for the whole batch (uint8: 4x less to copy than floats), and are
    preprocessed there with the same ``pixels_to_batch`` that training used. ``temperature`` is the served
    model's (``LoadedModel.temperature``): every probability the API reports comes from here.
    """
    with torch.inference_mode():
        logits = model(pixels_to_batch(pixels.to(device, non_blocking=True)))
        return calibrated_softmax(logits, temperature).cpu().numpy()


def top_k_result(probabilities: np.ndarray, k: int, model_version: str,
                 warnings: list[dict[str, str]] | None = None) -> dict:
    """One image's probabilities (10,) -> the API's result object, classes ordered by probability."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    top = [{"class_id": int(i), "label": CLASS_NAMES[i], "probability": float(probabilities[i])} for i in order]
    best = top[0]
    return {"class_id": best["class_id"], "label": best["label"], "confidence": best["probability"],
            "top_k": top, "model_version": model_version, "warnings": warnings or []}


def results(probabilities: np.ndarray, k: int, model_version: str,
            warnings: list[list[dict[str, str]]] | None = None) -> list[dict]:
    per_image = warnings or [[] for _ in range(len(probabilities))]
    return [top_k_result(row, k, model_version, notes) for row, notes in zip(probabilities, per_image, strict=True)]
