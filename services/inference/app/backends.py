"""What runs the network: ONNX Runtime on the CPU, or PyTorch (eager, on the CPU or a CUDA GPU).

Both take what the API hands the model, uint8 pixels (N, 28, 28) as numpy, and answer logits as a torch tensor,
so the temperature, the probabilities and the explanation are computed by the same code whichever runs
(``app/inference.py``, ``app/saliency.py``). Which one serves (BACKEND):

* ``auto``: ONNX Runtime when the model has its graph beside the checkpoint (``shared/onnx_export.py``) and the
  device is the CPU; PyTorch otherwise, and always on CUDA (a 43k-parameter network is launch-bound there, and
  PyTorch is what the GPU image is built and checked with).
* ``onnx``: ONNX Runtime on the CPU; a model without a graph is refused (the previous one keeps serving).
* ``torch``: PyTorch everywhere.

ONNX Runtime is 1.6-3x faster than PyTorch eager per image on one thread here: PyTorch's per-operator dispatch
dominates at these sizes. Each session has ONE intra-op thread (``threads``) and no inter-op pool: throughput
comes from one process per core (see ``__main__``), not from threads fighting over the same cores.
A graph must answer the checkpoint's logits on a fixed probe batch before it serves (``check_agrees``).
"""

from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from shared.preprocess import IMAGE_SIDE, pixels_to_batch

PROBE_TOLERANCE = 1e-3  # max |logit difference| between a graph and its checkpoint (float32 noise is ~1e-5)


class Backend(Protocol):
    name: str

    def logits(self, pixels: np.ndarray) -> torch.Tensor:
        """uint8 (N, 28, 28) -> logits (N, 10), on the backend's device."""


class TorchBackend:
    name = "torch"

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.model, self.device = model, device

    def logits(self, pixels: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():  # the uint8 pixels move once (4x less than floats), preprocessing on device
            return self.model(pixels_to_batch(torch.from_numpy(pixels).to(self.device, non_blocking=True)))


class OnnxBackend:
    name = "onnx"

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime  # only a server that runs a graph needs it

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: the session's info lines are not news
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def logits(self, pixels: np.ndarray) -> torch.Tensor:
        (logits,) = self.session.run(None, {self.input: np.ascontiguousarray(pixels, dtype=np.uint8)})
        return torch.from_numpy(logits)


def probe_pixels() -> np.ndarray:
    """A fixed batch that exercises the whole network: black, white, and seeded noise."""
    noise = np.random.default_rng(7).integers(0, 256, (6, IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)
    plain = np.stack([np.zeros((IMAGE_SIDE, IMAGE_SIDE), np.uint8), np.full((IMAGE_SIDE, IMAGE_SIDE), 255, np.uint8)])
    return np.concatenate([plain, noise])


def check_agrees(graph: Backend, reference: TorchBackend) -> None:
    """Raise ValueError unless the graph answers the checkpoint's logits on the probe batch (a stale graph, or
    one written for other weights, must never serve under this checkpoint's version)."""
    pixels = probe_pixels()
    ours, theirs = graph.logits(pixels).cpu(), reference.logits(pixels).cpu()
    if tuple(ours.shape) != tuple(theirs.shape):
        raise ValueError(f"the ONNX graph answers shape {tuple(ours.shape)}, the checkpoint {tuple(theirs.shape)}")
    difference = float((ours.double() - theirs.double()).abs().max())
    if not difference <= PROBE_TOLERANCE:
        raise ValueError(f"the ONNX graph disagrees with its checkpoint (logits differ by {difference:.3g})")
