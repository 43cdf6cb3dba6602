"""Pixels in, results out: the prediction maths as plain functions, usable without HTTP or a batcher (the
TorchServe handler's preprocess / inference / postprocess, with the preprocessing inside the backend)."""

import numpy as np

from services.inference.app.backends import Backend
from shared.classes import CLASS_NAMES
from shared.temperature import calibrated_softmax


def predict_probabilities(backend: Backend, pixels: np.ndarray, temperature: float) -> np.ndarray:
    """uint8 pixels (N, 28, 28) -> calibrated class probabilities (N, 10) as float32 numpy.

    Either backend preprocesses with the same ``pixels_to_batch`` that training used (the ONNX graph carries it).
    ``temperature`` is the served model's (``LoadedModel.temperature``): every probability the API reports
    comes from here, through the one function where a temperature meets logits.
    """
    return calibrated_softmax(backend.logits(pixels), temperature)


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
