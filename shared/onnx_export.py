"""The ONNX form of a model: the same network with the preprocessing in front, for ONNX Runtime on the CPU.

The graph takes what the API hands the model, uint8 pixels (N, 28, 28) with a dynamic batch axis, and applies
``shared.preprocess.pixels_to_batch`` itself (the exporter traces that very function), so a server needs no
torch to prepare its input and the two backends cannot drift apart. It answers raw logits: the temperature
stays in the checkpoint and is applied by the one function that applies it (``shared.temperature``).
``write_graph`` also writes the graph's card (``shared.graph_card``): the version, the temperature and the
checkpoint's logits on a probe batch, which a torch-free server checks the graph against before it serves it.

Opset 17: what every ONNX Runtime release since 1.15 (and so 1.2x/1.3x on PyPI) runs. The TorchScript-based
exporter (``dynamo=False``) needs only the ``onnx`` package, not onnxscript; its deprecation and tracer
warnings say nothing about this static network and are silenced.
"""

import copy
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from shared.atomic import write_atomic
from shared.graph_card import card_path, graph_path, probe_pixels, write_card
from shared.preprocess import IMAGE_SIDE, pixels_to_batch

__all__ = ["graph_path", "onnx_bytes", "write_graph", "write_onnx"]  # graph_path: callers import it from here too

ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "pixels", "logits"


class _WithPreprocessing(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels_to_batch(pixels))


def onnx_bytes(model: nn.Module) -> bytes:
    """The model (on any device; exported from a CPU copy) as a serialised ONNX graph."""
    wrapped = _WithPreprocessing(_cpu_copy(model)).eval()
    example = torch.zeros(2, IMAGE_SIDE, IMAGE_SIDE, dtype=torch.uint8)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapped, (example,), buffer, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=ONNX_OPSET, dynamo=False)
    return buffer.getvalue()


def write_onnx(model: nn.Module, path: Path) -> None:
    """Export and write atomically (temporary file, fsync, rename): a reader never sees half a graph."""
    data = onnx_bytes(model)
    write_atomic(path, lambda handle: handle.write(data))


def write_graph(model: nn.Module, checkpoint_path: Path, model_version: str, temperature: float | None) -> None:
    """The graph beside its checkpoint, then its card: the network's own logits on the probe batch."""
    write_onnx(model, graph_path(checkpoint_path))
    pixels = probe_pixels()
    with torch.inference_mode():
        logits = _cpu_copy(model).eval()(pixels_to_batch(torch.from_numpy(pixels))).numpy()
    write_card(card_path(checkpoint_path), model_version, temperature, pixels, logits)


def _cpu_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).to("cpu").to(memory_format=torch.contiguous_format)
