"""How far a set of confidences is from the accuracy they claim, on plain numpy arrays.

A classifier is calibrated when, among the images it is 80 % sure about, 80 % are right. The measures are the
standard definitions, so the trainer's report, the benchmark (on probabilities returned by the API) and the tests
agree (the temperature that makes the probabilities calibrated is applied by ``shared.temperature``):

* ECE (expected calibration error): confidences (the top probability) in 15 equal-width bins (lo, hi];
  the average over bins of |accuracy - mean confidence|, weighted by the share of images in the bin.
* NLL: the mean negative log probability of the true class (the test loss without label smoothing).
"""

from typing import Any

import numpy as np

ECE_BINS = 15
_TINY = float(np.finfo(np.float32).tiny)  # log(0) guard for probabilities that underflowed in float32


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(true class) over the rows of ``probabilities`` (N, C)."""
    true_class = np.asarray(probabilities, dtype=np.float64)[np.arange(len(labels)), labels]
    return float(-np.log(np.maximum(true_class, _TINY)).mean())


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, Any]]:
    """Per confidence bin (lo, hi]: how many images, their mean confidence and their accuracy (None when empty)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    # Bin b holds confidences in (b/bins, (b+1)/bins]; the top probability of C classes is never below 1/C.
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        rows.append({"lower": b / bins, "upper": (b + 1) / bins, "count": count,
                     "confidence": float(confidence[members].mean()) if count else None,
                     "accuracy": float(correct[members].mean()) if count else None})
    return rows


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    return ece_from_bins(reliability_bins(probabilities, labels, bins))


def ece_from_bins(rows: list[dict[str, Any]]) -> float:
    total = sum(row["count"] for row in rows)
    return float(sum(row["count"] / total * abs(row["accuracy"] - row["confidence"]) for row in rows if row["count"]))


def calibration_summary(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict[str, Any]:
    """ECE, NLL, mean confidence, accuracy and the reliability-diagram bins of one set of predictions."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    rows = reliability_bins(probabilities, labels, bins)
    return {
        "ece": ece_from_bins(rows),
        "nll": negative_log_likelihood(probabilities, labels),
        "mean_confidence": float(probabilities.max(axis=1).mean()),
        "accuracy": float((probabilities.argmax(axis=1) == np.asarray(labels)).mean()),
        "images": int(len(labels)),
        "reliability": rows,
    }
