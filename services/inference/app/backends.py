"""What runs the network: ONNX Runtime on the CPU, or PyTorch (eager, on the CPU or a CUDA GPU).

Both take what the API hands the model, uint8 pixels (N, 28, 28) as numpy, and answer float32 logits (N, 10) as
numpy, so the temperature, the probabilities and the explanation are computed by the same numpy code whichever
runs (``services/inference/app/classify.py``, ``saliency.py``). Which one serves (BACKEND):

* ``auto``: ONNX Runtime when the model has its graph and the graph's card beside the checkpoint
  (``shared/onnx_export.py``, ``shared/graph_card.py``) and the device is the CPU; PyTorch otherwise, and always
  on CUDA (a 43k-parameter network is launch-bound there, and PyTorch is what the GPU image is built and checked
  with).
* ``onnx``: ONNX Runtime on the CPU; a model without a graph or card is refused (the previous one keeps serving).
* ``torch``: PyTorch everywhere.

The CPU image has no torch at all: there only ONNX Runtime serves, and nothing on that path imports torch
(``TorchBackend`` imports it when it is built). ONNX Runtime is 1.6-3x faster than PyTorch eager per image on one
thread here: PyTorch's per-operator dispatch dominates at these sizes. Each session has ONE intra-op thread
(``threads``) and no inter-op pool: throughput comes from one process per core (``services/inference/__main__.py``),
not from threads fighting over the same cores. A graph must answer its card's probe logits before it serves
(``shared.graph_card.check_agrees``); one that disagrees is a broken release, counted and shown (``model_store``).
"""

import importlib.util
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class Backend(Protocol):
    name: str

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (N, 28, 28) -> float32 logits (N, 10)."""


def torch_installed() -> bool:
    """Whether this image has torch (the CPU image has not: only ONNX Runtime serves there)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def set_torch_threads(threads: int) -> None:
    """torch's thread count is per OS thread (OpenMP): call it in the thread that runs the model. Nothing to do
    without torch (ONNX Runtime's count is per session: ``OnnxBackend``)."""
    if threads <= 0:
        return
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


class TorchBackend:
    name = "torch"

    def __init__(self, model: Any, device: str) -> None:
        import torch

        self._torch, self.model, self.device = torch, model, torch.device(device)

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        from shared.preprocess import pixels_to_batch

        torch = self._torch
        with torch.inference_mode():  # the uint8 pixels move once (4x less than floats), preprocessing on device
            batch = pixels_to_batch(torch.from_numpy(pixels).to(self.device, non_blocking=True))
            return self.model(batch).float().cpu().numpy()


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

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run(None, {self.input: np.ascontiguousarray(pixels, dtype=np.uint8)})
        return logits
