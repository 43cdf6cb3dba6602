"""The chart geometry the templates draw (pure functions: checked directly)."""

import pytest

from services.frontend.app import charts

HISTORY = [
    {"epoch": 1, "train_loss": 0.9, "val_loss": 0.6, "train_accuracy": 0.70, "val_accuracy": 0.80},
    {"epoch": 2, "train_loss": 0.5, "val_loss": 0.45, "train_accuracy": 0.85, "val_accuracy": 0.86},
    {"epoch": 3, "train_loss": 0.4, "val_loss": 0.42, "train_accuracy": 0.88, "val_accuracy": 0.885},
]


def test_line_chart_maps_epochs_left_to_right_and_higher_values_up():
    chart = charts.line_chart(HISTORY, [("train_loss", "Training"), ("val_loss", "Validation")], "Loss", True)
    training = chart["lines"][0]["dots"]
    assert [dot["epoch"] for dot in training] == [1, 2, 3]
    assert training[0]["x"] == chart["left"] and training[-1]["x"] == chart["right"]
    assert training[0]["y"] < training[1]["y"] < training[2]["y"]  # loss falls, so the line goes down
    assert chart["y_ticks"][0]["label"] == "0.00" and float(chart["y_ticks"][-1]["label"]) >= 0.9
    assert chart["lines"][1]["last"] == 0.42 and len(chart["x_ticks"]) == 3


def test_accuracy_chart_range_is_tight_and_never_above_one():
    chart = charts.line_chart(HISTORY, [("train_accuracy", "T"), ("val_accuracy", "V")], "Acc", False)
    labels = [float(tick["label"]) for tick in chart["y_ticks"]]
    assert labels[0] <= 0.70 and 0.885 <= labels[-1] <= 1.0 and 3 <= len(labels) <= 6


def test_no_history_draws_nothing():
    assert charts.line_chart([], [("train_loss", "Training")], "Loss", True) is None
    assert charts.training_view({}) == {"loss": None, "accuracy": None, "confusion": None, "per_class": [],
                                        "reliability": None}


def test_confusion_shades_by_share_of_the_row_and_per_class_flags_the_weakest():
    matrix = [[8, 2], [5, 5]]
    view = charts.confusion(matrix, ["T-shirt/top", "Trouser"])
    first = view["rows"][0]["cells"]
    assert first[0]["diagonal"] and not first[1]["diagonal"]
    assert first[0]["share"] == 0.8 and first[0]["alpha"] > first[1]["alpha"]
    assert view["short"] == ["T-shirt", "Trouser"]
    rows = charts.per_class([{"label": "A", "precision": 0.9, "recall": 0.8, "f1": 0.85},
                             {"label": "B", "precision": 0.5, "recall": 0.4, "f1": 0.45}])
    assert rows[1].get("weakest") and not rows[0].get("weakest")
    assert rows[0]["bars"] == [("precision", 0.9), ("recall", 0.8), ("f1", 0.85)]


def _bins(*rows: tuple[int, float, float]) -> list[dict]:
    """15 bins; the given ones (index, count, accuracy) are filled, with the bin's middle as mean confidence."""
    bins = [{"lower": b / 15, "upper": (b + 1) / 15, "count": 0, "confidence": None, "accuracy": None}
            for b in range(15)]
    for index, count, accuracy in rows:
        bins[index].update(count=count, confidence=(index + 0.5) / 15, accuracy=accuracy)
    return bins


def test_reliability_diagram_puts_confidence_across_accuracy_up_and_sizes_dots_by_count():
    calibration = {"temperature": 0.61, "bins": 15, "fitted_on": "validation split (5000 images)", "test": {
        "before": {"ece": 0.09, "nll": 0.28, "mean_confidence": 0.84, "accuracy": 0.93,
                   "reliability": _bins((10, 100, 0.9), (13, 900, 0.99))},
        "after": {"ece": 0.009, "nll": 0.21, "mean_confidence": 0.94, "accuracy": 0.93,
                  "reliability": _bins((14, 1000, 14.5 / 15))}}}
    view = charts.reliability(calibration)
    before, after = view["lines"]
    assert before["name"] == "Before (T = 1)" and after["name"] == "After (T = 0.61)" and before["ece"] == 0.09
    assert len(before["dots"]) == 2 and len(after["dots"]) == 1  # empty bins are not drawn
    low, high = before["dots"]
    assert low["x"] < high["x"] and low["y"] > high["y"]  # more confident: further right; more accurate: higher
    assert high["r"] > low["r"]  # 900 images against 100
    top = view["ticks"][-1]
    assert (top["x"], top["y"]) == (view["right"], view["top"])  # (1, 1) is the top right corner
    on_diagonal = after["dots"][0]  # confidence == accuracy
    assert on_diagonal["x"] - view["left"] == pytest.approx(view["bottom"] - on_diagonal["y"], abs=0.2)
    corner = view["ticks"][0]
    assert (corner["x"], corner["y"]) == (view["left"], view["bottom"])
    assert "1000 images" in after["dots"][0]["title"]


def test_a_model_without_calibration_has_no_reliability_diagram():
    assert charts.reliability({}) is None
    assert charts.reliability({"test": {"before": {"reliability": []}}}) is None
