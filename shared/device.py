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


def has_fast_bf16(device: torch.device) -> bool:
    """Whether bfloat16 math is native here (recent NVIDIA GPUs; CPUs with AVX512-BF16 or AMX), not emulated."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
