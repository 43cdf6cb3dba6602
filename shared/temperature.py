"""Calibrated probabilities: temperature scaling, the one place where a temperature meets logits.

Temperature scaling (Guo et al., 2017, "On Calibration of Modern Neural Networks") divides the logits by one number
T fitted on held-out data before the softmax: T < 1 sharpens under-confident probabilities (label smoothing makes
this network under-confident), T > 1 softens over-confident ones, and the predicted class never changes. Every
probability the inference API reports, and the trainer's "after" figures, go through ``calibrated_log_softmax``;
how calibrated they are is measured by ``shared.calibration_measures``.
"""

import numpy as np


def calibrated_log_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Log class probabilities from logits (N, C) divided by ``temperature`` (1.0 = the raw softmax).

    In float64: a confident prediction's log-probability is a tiny negative number whose changes float32 would
    round away (the explanation measures exactly such changes). numpy, so the torch-free server computes every
    probability it reports; torch callers pass ``tensor.cpu().numpy()``.
    """
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    shifted = scaled - scaled.max(axis=1, keepdims=True)  # the largest term is exp(0): no overflow
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def calibrated_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Class probabilities (N, C) in float32: what the API reports."""
    return np.exp(calibrated_log_softmax(logits, temperature)).astype(np.float32)
