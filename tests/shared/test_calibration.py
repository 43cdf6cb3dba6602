"""The calibration measures (ECE, NLL, reliability bins) and the temperature-scaled softmax, on synthetic data."""

import numpy as np
import pytest
import torch

from shared.calibration_measures import (
    calibration_summary,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)
from shared.temperature import calibrated_softmax


def calibrated_set(n: int = 200_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities whose labels are drawn from those very probabilities: calibrated by construction."""
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.full(10, 0.3), size=n)
    labels = (probabilities.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return probabilities, labels


def test_a_perfectly_calibrated_set_has_an_ece_near_zero():
    probabilities, labels = calibrated_set()
    assert expected_calibration_error(probabilities, labels) < 0.005


def test_an_over_confident_set_has_the_gap_as_its_ece():
    """Every prediction 90 % sure, right 60 % of the time: one bin, ECE = 0.9 - 0.6."""
    probabilities = np.full((10, 10), 0.1 / 9)
    probabilities[:, 0] = 0.9
    labels = np.array([0] * 6 + [1] * 4)
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.3)
    bins = reliability_bins(probabilities, labels)
    assert len(bins) == 15 and sum(row["count"] for row in bins) == 10
    full = [row for row in bins if row["count"]]
    assert len(full) == 1 and full[0]["lower"] < 0.9 <= full[0]["upper"]
    assert full[0]["confidence"] == pytest.approx(0.9) and full[0]["accuracy"] == pytest.approx(0.6)
    assert all(row["confidence"] is None and row["accuracy"] is None for row in bins if not row["count"])


def test_bins_are_open_below_and_closed_above():
    probabilities = np.zeros((2, 10))
    probabilities[0, :2] = [1 / 3, 2 / 3]  # confidence 2/3 = 10/15: the top of bin 9 (0-based)
    probabilities[1, 0] = 1.0  # confidence 1: the last bin
    bins = reliability_bins(probabilities, np.array([1, 0]))
    assert [index for index, row in enumerate(bins) if row["count"]] == [9, 14]


def test_nll_is_the_mean_negative_log_probability_of_the_true_class():
    probabilities = np.array([[0.5, 0.5] + [0] * 8, [0.25, 0.75] + [0] * 8])
    assert negative_log_likelihood(probabilities, np.array([0, 1])) == pytest.approx(
        -(np.log(0.5) + np.log(0.75)) / 2)
    assert np.isfinite(negative_log_likelihood(probabilities, np.array([5, 5])))  # p = 0 does not give inf


def test_temperature_scaling_keeps_the_class_and_sharpens_or_softens():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [900.0, -900.0, 0.0]])  # the last: no overflow
    raw, sharp, soft = (calibrated_softmax(logits.numpy(), t) for t in (1.0, 0.5, 2.0))  # numpy: no torch needed
    assert raw.dtype == np.float32
    torch.testing.assert_close(torch.from_numpy(raw), torch.softmax(logits, dim=1))
    torch.testing.assert_close(torch.from_numpy(sharp), torch.softmax(logits / 0.5, dim=1))
    assert (sharp.argmax(1) == raw.argmax(1)).all() and (soft.argmax(1) == raw.argmax(1)).all()
    assert (sharp[:2].max(1) > raw[:2].max(1)).all() and (soft[:2].max(1) < raw[:2].max(1)).all()


def test_summary_reports_confidence_against_accuracy():
    probabilities, labels = calibrated_set(20_000, seed=1)
    summary = calibration_summary(probabilities, labels)
    assert summary["images"] == 20_000 and len(summary["reliability"]) == 15
    assert summary["mean_confidence"] == pytest.approx(summary["accuracy"], abs=0.01)
    assert summary["ece"] == pytest.approx(expected_calibration_error(probabilities, labels))
