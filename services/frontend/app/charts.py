"""Turn the training report into what the templates draw: SVG line charts, a confusion heat-map, per-class bars and
the reliability diagram (confidence against accuracy, before and after calibration).

Geometry is computed here (plain Python, easy to test) so the Jinja templates only place ready-made numbers, and
the browser needs no chart library.
"""

import math
from typing import Any

WIDTH, HEIGHT = 520, 250
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 46, 14, 12, 36


def line_chart(history: list[dict[str, Any]], series: list[tuple[str, str]], title: str,
               zero_based: bool, epoch_span: tuple[int, int] | None = None) -> dict[str, Any] | None:
    """A chart of ``history[*][key]`` per epoch for each ``(key, name)`` in ``series``; None when nothing to draw.
    ``epoch_span`` (first, last) widens the x axis beyond the epochs so far: a run's curves grow into it."""
    epochs = [int(row["epoch"]) for row in history if "epoch" in row]
    values = [float(row[key]) for row in history for key, _ in series if row.get(key) is not None]
    if not epochs or not values:
        return None
    low, high = _y_range(min(values), max(values), zero_based)
    first, last = min(epochs), max(epochs)
    if epoch_span is not None:
        first, last = min(first, epoch_span[0]), max(last, epoch_span[1])
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(epoch: float) -> float:
        return PAD_LEFT + (plot_w * (epoch - first) / (last - first) if last > first else plot_w / 2)

    def y(value: float) -> float:
        return PAD_TOP + plot_h * (1 - (value - low) / (high - low))

    lines = []
    for number, (key, name) in enumerate(series):
        points = [(x(int(row["epoch"])), y(float(row[key])), float(row[key]), int(row["epoch"]))
                  for row in history if row.get(key) is not None and "epoch" in row]
        if points:
            lines.append({"name": name, "css": f"series-{number}", "last": points[-1][2],
                          "points": " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in points),
                          "dots": [{"x": round(px, 1), "y": round(py, 1), "value": v, "epoch": e}
                                   for px, py, v, e in points]})
    step = max(1, math.ceil((last - first + 1) / 8))
    return {
        "title": title, "width": WIDTH, "height": HEIGHT,
        "left": PAD_LEFT, "right": WIDTH - PAD_RIGHT, "top": PAD_TOP, "bottom": HEIGHT - PAD_BOTTOM,
        "y_ticks": [{"y": round(y(v), 1), "label": f"{v:.2f}"} for v in _ticks(low, high)],
        "x_ticks": [{"x": round(x(e), 1), "label": str(e)} for e in range(first, last + 1, step)],
        "lines": lines, "quiet_dots": len(epochs) > 15,  # many epochs: dots only as hover targets
    }


def _y_range(low: float, high: float, zero_based: bool) -> tuple[float, float]:
    """Round the value range outwards to a "nice" tick step (0.05, 0.1, 0.2, ...) so labels read well."""
    if zero_based:
        low = 0.0
    span = max(high - low, 1e-6)
    step = next((s for s in NICE_STEPS if span / s <= 5), NICE_STEPS[-1])
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    if high <= low:
        high = low + step
    return low, high


NICE_STEPS = (0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)


def _ticks(low: float, high: float) -> list[float]:
    span = high - low
    step = next((s for s in NICE_STEPS if span / s <= 5 + 1e-9), NICE_STEPS[-1])
    count = round(span / step)
    return [low + step * i for i in range(count + 1)]


SHORT_NAMES = {"T-shirt/top": "T-shirt", "Ankle boot": "Boot"}


def confusion(matrix: list[list[int]], labels: list[str]) -> dict[str, Any] | None:
    """Rows = true class, columns = predicted; each cell's shade is its share of the row (so recall shows)."""
    if not matrix or len(matrix) != len(labels):
        return None
    rows = []
    for true_index, counts in enumerate(matrix):
        total = sum(counts) or 1
        cells = []
        for predicted_index, count in enumerate(counts):
            share = count / total
            cells.append({"count": count, "share": share, "diagonal": predicted_index == true_index,
                          "alpha": round(min(1.0, share ** 0.5), 3) if count else 0.0,
                          "dark": share > 0.45})
        rows.append({"label": labels[true_index], "cells": cells, "total": sum(counts)})
    return {"labels": labels, "short": [SHORT_NAMES.get(label, label) for label in labels], "rows": rows}


def per_class(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-class precision/recall/F1 as percentages for bar widths; the weakest class is flagged."""
    result = [{"label": row["label"], "support": row.get("support"),
               "bars": [(name, float(row[name])) for name in ("precision", "recall", "f1") if name in row]}
              for row in rows]
    if rows:
        weakest = min(range(len(rows)), key=lambda i: float(rows[i].get("f1", 1.0)))
        result[weakest]["weakest"] = True
    return result


RELIABILITY_SIDE = 280  # the square plot area
RELIABILITY_PAD_LEFT, RELIABILITY_PAD_TOP, RELIABILITY_PAD_BOTTOM, RELIABILITY_PAD_RIGHT = 52, 14, 40, 14


def reliability(calibration: dict[str, Any]) -> dict[str, Any] | None:
    """The test set's reliability diagram: per confidence bin, the mean confidence (x) against the accuracy (y),
    before and after calibration. A calibrated model's dots lie on the diagonal; a dot's area shows how many
    images its bin holds. None when the model has no calibration report."""
    test = calibration.get("test") or {}
    temperature = calibration.get("temperature")
    series = [(key, name) for key, name in (("before", "Before (T = 1)"),
                                            ("after", f"After (T = {temperature:.2f})" if temperature else "After"))
              if (test.get(key) or {}).get("reliability")]
    if not series:
        return None
    left, top = RELIABILITY_PAD_LEFT, RELIABILITY_PAD_TOP
    right, bottom = left + RELIABILITY_SIDE, top + RELIABILITY_SIDE

    def x(value: float) -> float:
        return round(left + RELIABILITY_SIDE * value, 1)

    def y(value: float) -> float:
        return round(bottom - RELIABILITY_SIDE * value, 1)

    lines = [_reliability_line(key, name, test[key], x, y) for key, name in series]
    ticks = [{"label": f"{value:.1f}", "x": x(value), "y": y(value)} for value in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]
    return {"width": right + RELIABILITY_PAD_RIGHT, "height": bottom + RELIABILITY_PAD_BOTTOM, "left": left,
            "right": right, "top": top, "bottom": bottom, "ticks": ticks, "lines": lines, "temperature": temperature,
            "bins": calibration.get("bins"), "fitted_on": calibration.get("fitted_on")}


RELIABILITY_CSS = {"before": "series-1", "after": "series-0"}


def _reliability_line(key: str, name: str, summary: dict[str, Any], x, y) -> dict[str, Any]:
    rows = [row for row in summary["reliability"] if row.get("count")]
    total = sum(row["count"] for row in rows) or 1
    dots = [{"x": x(row["confidence"]), "y": y(row["accuracy"]),
             "r": round(2.5 + 9 * (row["count"] / total) ** 0.5, 1),
             "title": f"{name}: confidence {row['lower']:.0%}-{row['upper']:.0%}, {row['count']} images, "
                      f"mean confidence {row['confidence']:.1%}, accuracy {row['accuracy']:.1%}"} for row in rows]
    return {"name": name, "css": RELIABILITY_CSS[key], "ece": summary.get("ece"), "nll": summary.get("nll"),
            "mean_confidence": summary.get("mean_confidence"), "accuracy": summary.get("accuracy"),
            "points": " ".join(f"{dot['x']},{dot['y']}" for dot in dots), "dots": dots}


def training_view(training: dict[str, Any]) -> dict[str, Any]:
    """Everything the charts section needs from the API's ``training`` report (tolerates missing parts)."""
    history = training.get("history") or []
    labels = [row["label"] for row in training.get("per_class") or []]
    return {
        "loss": line_chart(history, [("train_loss", "Training"), ("val_loss", "Validation")], "Loss per epoch",
                           zero_based=True),
        "accuracy": line_chart(history, [("train_accuracy", "Training"), ("val_accuracy", "Validation")],
                               "Accuracy per epoch", zero_based=False),
        "confusion": confusion(training.get("confusion_matrix") or [], labels),
        "per_class": per_class(training.get("per_class") or []),
        "reliability": reliability(training.get("calibration") or {}),
    }
