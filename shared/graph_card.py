"""What a server needs beside a model's ONNX graph to serve it without torch: its card.

``models/<version>.graph.json`` (written with the graph when a model is published, ``shared.artifacts``) holds the
model's version, its temperature (None: published before calibration, served as the raw softmax) and a probe: a
fixed batch of pixels and the logits the checkpoint's own network answers for them. A server that loads the graph
runs the probe through it and serves it only when the answers agree (``check_agrees``), so a stale graph, or one
written for other weights, never serves under this version, and the server needs neither torch nor the
checkpoint to know it. JSON, so anyone can read it; the pixels are base64 (the probe is 8 images).
"""

import base64
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.atomic import write_json_atomic
from shared.classes import CLASS_NAMES, NUM_CLASSES
from shared.preprocess import IMAGE_SIDE

FORMAT = "fashion-mnist-graph-card"
FORMAT_VERSION = 1
PROBE_TOLERANCE = 1e-3  # max |logit difference| between a graph and its checkpoint (float32 noise is ~1e-5)


class CardError(ValueError):
    """A missing, unreadable or foreign card, or a graph that does not answer what its card says."""


class GraphDisagrees(CardError):
    """The graph does not answer its checkpoint's probe logits: it was exported from other weights or with another
    preprocessing than the checkpoint's (a server then serves the checkpoint with torch, and says so loudly)."""


@dataclass(frozen=True)
class GraphCard:
    model_version: str
    temperature: float | None  # None: uncalibrated (the raw softmax, T = 1)
    probe_pixels: np.ndarray  # uint8 (n, 28, 28)
    probe_logits: np.ndarray  # float32 (n, 10): the checkpoint's answers

    @property
    def calibrated(self) -> bool:
        return self.temperature is not None


def graph_path(checkpoint_path: Path) -> Path:
    """Where a checkpoint's graph lives: beside it, ``models/<version>.onnx`` for ``models/<version>.pt``."""
    return Path(checkpoint_path).with_suffix(".onnx")


def card_path(checkpoint_path: Path) -> Path:
    """``models/<version>.graph.json`` for ``models/<version>.pt``."""
    return Path(checkpoint_path).with_suffix(".graph.json")


def probe_pixels() -> np.ndarray:
    """A fixed batch that exercises the whole network: black, white, and seeded noise."""
    noise = np.random.default_rng(7).integers(0, 256, (6, IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)
    plain = np.stack([np.zeros((IMAGE_SIDE, IMAGE_SIDE), np.uint8), np.full((IMAGE_SIDE, IMAGE_SIDE), 255, np.uint8)])
    return np.concatenate([plain, noise])


def write_card(path: Path, model_version: str, temperature: float | None, pixels: np.ndarray,
               logits: np.ndarray) -> None:
    """Atomically (a reader sees the old card or the new one)."""
    write_json_atomic(path, {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model_version": model_version,
        "temperature": None if temperature is None else float(temperature), "class_names": list(CLASS_NAMES),
        "probe": {"shape": list(pixels.shape),
                  "pixels_base64": base64.b64encode(np.ascontiguousarray(pixels, np.uint8).tobytes()).decode(),
                  "logits": np.asarray(logits, np.float32).tolist()},
    })


def read_card(path: Path) -> GraphCard:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CardError(f"no graph card {path.name} beside the graph (a model published before cards: "
                        "`python -m services.trainer.cards --artifacts-dir <its folder>` writes it)") from None
    except (OSError, ValueError) as error:
        raise CardError(f"{path.name}: unreadable graph card: {error}") from error
    try:
        return _parse(data)
    except (KeyError, TypeError, ValueError) as error:
        raise CardError(f"{path.name}: not a usable graph card: {error}") from error


def _parse(data: Any) -> GraphCard:
    if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"format {data.get('format')!r} version {data.get('format_version')!r}")
    if data["class_names"] != list(CLASS_NAMES):
        raise ValueError("class names differ from FashionMNIST's")
    temperature = data["temperature"]
    if temperature is not None and not (isinstance(temperature, float) and math.isfinite(temperature)
                                        and temperature > 0):
        raise ValueError(f"temperature must be a positive finite float, got {temperature!r}")
    probe = data["probe"]
    shape = tuple(int(side) for side in probe["shape"])
    pixels = np.frombuffer(base64.b64decode(probe["pixels_base64"], validate=True), dtype=np.uint8).reshape(shape)
    logits = np.asarray(probe["logits"], dtype=np.float32)
    if pixels.ndim != 3 or pixels.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or logits.shape != (len(pixels), NUM_CLASSES):
        raise ValueError(f"probe of shape {pixels.shape} with logits {logits.shape}")
    return GraphCard(model_version=str(data["model_version"]), temperature=temperature, probe_pixels=pixels,
                     probe_logits=logits)


def check_agrees(logits: Callable[[np.ndarray], np.ndarray], card: GraphCard) -> None:
    """Raise ``GraphDisagrees`` unless ``logits`` (a graph's forward pass) answers the card's probe logits."""
    ours = np.asarray(logits(card.probe_pixels))
    if ours.shape != card.probe_logits.shape:
        raise GraphDisagrees(f"the ONNX graph answers shape {ours.shape}, its checkpoint {card.probe_logits.shape}")
    difference = float(np.abs(ours.astype(np.float64) - card.probe_logits).max())
    if not difference <= PROBE_TOLERANCE:
        raise GraphDisagrees(f"the ONNX graph disagrees with its checkpoint (logits differ by {difference:.3g})")
