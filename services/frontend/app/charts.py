"""Turn the training report into what the templates draw: SVG line charts, a confusion heat-map, per-class bars.

Geometry is computed here (plain Python, easy to test) so the Jinja templates only place ready-made numbers, and
the browser needs no chart library.
"""

import math
from typing import Any

WIDTH, HEIGHT = 520, 250
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 46, 14, 12, 36


def line_chart(history: list[dict[str, Any]], series: list[tuple[str, str]], title: str,
               zero_based: bool) -> dict[str, Any] | None:
    """A chart of ``history[*][key]`` per epoch for each ``(key, name)`` in ``series``; None when nothing to draw."""
    epochs = [int(row["epoch"]) for row in history if "epoch" in row]
    values = [float(row[key]) for row in history for key, _ in series if row.get(key) is not None]
    if not epochs or not values:
        return None
    low, high = _y_range(min(values), max(values), zero_based)
    first, last = min(epochs), max(epochs)
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
    }
