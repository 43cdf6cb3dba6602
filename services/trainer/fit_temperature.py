"""Fit the temperature that calibrates a trained model, and report what it does on the test set.

The temperature is fitted on the validation split only (the test set is looked at once, for the report):
the T that minimises the validation NLL of softmax(logits / T), found by L-BFGS on log T (so T stays
positive) in float64 from T = 1. The same logits give the same T, so a run is reproducible.
"""

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from services.trainer.evaluation import EvalResult
from shared.calibration_measures import ECE_BINS, calibration_summary, negative_log_likelihood
from shared.temperature import calibrated_log_softmax

FIT_DESCRIPTION = "minimised the validation NLL over log T with L-BFGS (strong Wolfe line search, float64, from T=1)"
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 20.0  # far outside any sane value; guards degenerate fits (tiny splits)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising mean cross-entropy of ``logits / T`` against ``labels``."""
    logits_t = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=200, tolerance_grad=1e-10, tolerance_change=1e-14,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits_t / log_t.exp(), labels_t)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return float(np.clip(log_t.exp().item(), MIN_TEMPERATURE, MAX_TEMPERATURE))


def probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    """float64 probabilities, as the served model would report them (the API rounds them to float32)."""
    return np.exp(calibrated_log_softmax(logits, temperature))


def calibration_report(val: EvalResult, test: EvalResult) -> tuple[float, dict[str, Any]]:
    """Fit T on ``val``; the ``calibration`` block of metrics.json with test figures before and after."""
    temperature = fit_temperature(val.logits, val.labels)
    return temperature, {
        "method": "temperature scaling",
        "temperature": temperature,
        "fitted_on": f"validation split ({len(val.labels)} images)",
        "fit": FIT_DESCRIPTION,
        "validation_nll": {"before": negative_log_likelihood(probabilities(val.logits, 1.0), val.labels),
                           "after": negative_log_likelihood(probabilities(val.logits, temperature), val.labels)},
        "bins": ECE_BINS,
        "test": {"before": calibration_summary(probabilities(test.logits, 1.0), test.labels),
                 "after": calibration_summary(probabilities(test.logits, temperature), test.labels)},
    }
