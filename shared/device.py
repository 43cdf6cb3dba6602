"""DEVICE=auto|cpu|cuda -> a device, the same rule for training and serving.

torch is imported only when the answer depends on it (``auto``, ``cuda``): the CPU inference image has no torch,
and ``device_name("cpu")`` must work there.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class DeviceUnavailableError(RuntimeError):
    """DEVICE=cuda was asked for on a machine where torch sees no CUDA device (or has no torch at all)."""


def device_name(name: str) -> str:
    """``auto`` picks CUDA when torch sees a GPU, else the CPU (also when torch is not installed); ``cuda``
    without a GPU is an error."""
    if name == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        if name == "auto":
            return "cpu"
        raise DeviceUnavailableError(f"DEVICE={name} needs torch, which is not installed in this image") from None
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError("DEVICE=cuda but no CUDA device is available")
    return name


def resolve_device(name: str) -> "torch.device":
    """``device_name`` as a torch device (torch callers: the trainer, the torch backend)."""
    import torch

    return torch.device(device_name(name))


def has_fast_bf16(device: "torch.device") -> bool:
    """Whether bfloat16 math is native here (recent NVIDIA GPUs; CPUs with AVX512-BF16 or AMX), not emulated."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
