"""The one preprocessing step from 28x28 uint8 pixels to the model's input.

Training, evaluation and serving all call ``pixels_to_batch``, so their inputs cannot drift apart. Pixels are
scaled to [0, 1] (as torchvision's ToTensor does) and then standardised with the training set's mean and
standard deviation. The function takes numpy arrays and torch tensors alike (numpy in, numpy out; torch in, torch
out, on the tensor's device) and never imports torch itself, so the torch-free inference image can import this
module; there the ONNX graph carries the same step, traced from this very function (``shared/onnx_export.py``).
"""

from typing import TypeVar

import numpy as np
from PIL import Image

IMAGE_SIDE = 28
# Mean and standard deviation of the 60,000 FashionMNIST training pixels, after scaling to [0, 1].
PIXEL_MEAN = 0.2860
PIXEL_STD = 0.3530

Pixels = TypeVar("Pixels")  # a numpy array or a torch tensor


def pixels_to_batch(pixels: Pixels) -> Pixels:
    """uint8 pixels of shape (N, 28, 28) or (N, 1, 28, 28) -> float32 (N, 1, 28, 28), numpy or torch."""
    dtype = str(pixels.dtype)
    if dtype not in ("uint8", "torch.uint8"):
        raise TypeError(f"expected uint8 pixels, got {dtype}")
    if pixels.ndim == 3:
        pixels = pixels[:, None]
    if pixels.ndim != 4 or tuple(pixels.shape[1:]) != (1, IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"expected pixels of shape (N, 28, 28), got {tuple(pixels.shape)}")
    scaled = pixels.astype(np.float32) if isinstance(pixels, np.ndarray) else pixels.float()
    return (scaled / 255.0 - PIXEL_MEAN) / PIXEL_STD


def image_to_tensor(image: "np.ndarray | Image.Image"):  # -> torch.Tensor (torch is imported only here)
    """One 28x28 grayscale image (uint8 array or PIL image) -> float tensor of shape (1, 28, 28)."""
    import torch  # the callers (trainer tools, the peers' benchmarks) have torch

    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("L"))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels, got {array.dtype}")
    if array.shape != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"expected a 28x28 image, got shape {array.shape}")
    return pixels_to_batch(torch.from_numpy(array.copy()).unsqueeze(0))[0]
