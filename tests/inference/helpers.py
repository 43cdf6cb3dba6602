"""Small helpers shared by the inference tests: image encoding and the offline reference prediction."""

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from shared.artifacts import read_manifest
from shared.checkpoint import load_checkpoint
from shared.preprocess import pixels_to_batch


def encode(pixels: np.ndarray, fmt: str = "PNG", mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


def offline_probabilities(model_dir: Path, images: np.ndarray) -> tuple[np.ndarray, str]:
    """The published model run directly (no HTTP, no service code): probabilities with the checkpoint's
    temperature applied by hand (1.0 when it has none), and its version."""
    published = read_manifest(model_dir)
    checkpoint = load_checkpoint(published.checkpoint_path)
    model = checkpoint.build_model("cpu")
    with torch.inference_mode():
        logits = model(pixels_to_batch(torch.from_numpy(images)))
    temperature = float(checkpoint.data.get("temperature", 1.0))
    return torch.softmax(logits / temperature, dim=1).numpy(), checkpoint.model_version


def files(images: list[bytes]) -> list[tuple[str, tuple[str, bytes]]]:
    return [("file", (f"image-{i}.png", data)) for i, data in enumerate(images)]
