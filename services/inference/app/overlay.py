"""The explanation as a picture: the 28x28 input the model saw, enlarged with square pixels (nearest neighbour),
dimmed, with the saliency blended on top as a heat map (dark red -> red -> orange -> yellow)."""

import numpy as np

from services.inference.app.sample_store import png_base64

SCALE = 10  # 28x28 -> 280x280
DIM = 0.55  # the garment stays visible under the heat map without competing with it
HEAT = np.array([[110, 0, 20], [215, 25, 30], [250, 130, 20], [255, 235, 90]], dtype=np.float64)
MAX_ALPHA = 0.9


def heat_colours(saliency: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (H, W) -> RGB floats (H, W, 3) along the heat ramp."""
    stops = np.linspace(0.0, 1.0, len(HEAT))
    return np.stack([np.interp(saliency, stops, HEAT[:, channel]) for channel in range(3)], axis=-1)


def overlay(pixels: np.ndarray, saliency: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """uint8 (28, 28) and saliency (28, 28) in [0, 1] -> uint8 RGB (28*scale, 28*scale, 3)."""
    gray = np.repeat(pixels.astype(np.float64)[..., np.newaxis] * DIM, 3, axis=-1)
    alpha = (MAX_ALPHA * np.sqrt(np.clip(saliency, 0.0, 1.0)))[..., np.newaxis]  # sqrt: weak support still shows
    blended = gray * (1.0 - alpha) + heat_colours(saliency) * alpha
    image = np.rint(blended).astype(np.uint8)
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def overlay_png_base64(pixels: np.ndarray, saliency: np.ndarray) -> str:
    return png_base64(overlay(pixels, saliency))
