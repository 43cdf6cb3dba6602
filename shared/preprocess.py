"""The one preprocessing step from 28x28 uint8 pixels to the model's input tensor.

Training, evaluation and serving all call these functions, so their inputs cannot drift apart. Pixels are
scaled to [0, 1] (as torchvision's ToTensor does) and then standardised with the training set's mean and
standard deviation.
"""

import numpy as np
import torch
from PIL import Image

IMAGE_SIDE = 28
# Mean and standard deviation of the 60,000 FashionMNIST training pixels, after scaling to [0, 1].
PIXEL_MEAN = 0.2860
PIXEL_STD = 0.3530


def pixels_to_batch(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels of shape (N, 28, 28) or (N, 1, 28, 28), on any device -> float (N, 1, 28, 28)."""
    if pixels.dtype != torch.uint8:
        raise TypeError(f"expected uint8 pixels, got {pixels.dtype}")
    if pixels.dim() == 3:
        pixels = pixels.unsqueeze(1)
    if pixels.dim() != 4 or tuple(pixels.shape[1:]) != (1, IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"expected pixels of shape (N, 28, 28), got {tuple(pixels.shape)}")
    return (pixels.float() / 255.0 - PIXEL_MEAN) / PIXEL_STD


def image_to_tensor(image: "np.ndarray | Image.Image") -> torch.Tensor:
    """One 28x28 grayscale image (uint8 array or PIL image) -> float tensor of shape (1, 28, 28)."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("L"))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels, got {array.dtype}")
    if array.shape != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"expected a 28x28 image, got shape {array.shape}")
    return pixels_to_batch(torch.from_numpy(array.copy()).unsqueeze(0))[0]
