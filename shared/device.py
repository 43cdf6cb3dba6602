"""DEVICE=auto|cpu|cuda -> a torch device, the same rule for training and serving."""

import torch


class DeviceUnavailableError(RuntimeError):
    """DEVICE=cuda was asked for on a machine where torch sees no CUDA device."""


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when torch sees a GPU, else the CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError("DEVICE=cuda but no CUDA device is available")
    return torch.device(name)
