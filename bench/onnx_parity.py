"""ONNX Runtime against PyTorch on the 10,000 real test images (``python -m bench onnx_parity``).

Both backends load the served model the way the inference service does (``ModelStore``, BACKEND=onnx and
BACKEND=torch) and compute calibrated probabilities with the service's own function. Goals: the top-1 class
is identical on every image and no probability differs by 1e-4 or more; the accuracy is the same.
"""

import numpy as np
import torch

from bench.common import data_dir, model_dir, save_result
from services.inference.app.classify import predict_probabilities
from services.inference.app.model_store import ModelStore
from shared.data import load_split

PASS = 256


def probabilities(backend: str, images: np.ndarray) -> np.ndarray:
    store = ModelStore(model_dir().parent / "no-artifacts-for-bench", model_dir(), torch.device("cpu"),
                       backend=backend, threads=1)
    store.poll()
    loaded = store.current
    assert loaded is not None and loaded.backend.name == backend, f"{backend}: no model in {model_dir()}"
    return np.concatenate([predict_probabilities(loaded.backend, images[i:i + PASS], loaded.temperature)
                           for i in range(0, len(images), PASS)])


def main() -> None:
    split = load_split(data_dir(), train=False, download=False)
    images, labels = split.images.numpy(), split.labels.numpy()
    onnx, eager = probabilities("onnx", images), probabilities("torch", images)
    same_top1 = int((onnx.argmax(1) == eager.argmax(1)).sum())
    difference = float(np.abs(onnx.astype(np.float64) - eager).max())
    rows = [{"images": len(images), "same_top1": same_top1, "max_probability_difference": difference,
             "accuracy_onnx": float((onnx.argmax(1) == labels).mean()),
             "accuracy_torch": float((eager.argmax(1) == labels).mean())}]
    ok = same_top1 == len(images) and difference < 1e-4
    save_result("onnx_parity", rows, goal="top-1 identical on every image, probabilities within 1e-4", passed=ok)
    print(f"{'PASS' if ok else 'MISS'}  top-1 identical on {same_top1}/{len(images)}, max |dp| {difference:.2e}")


if __name__ == "__main__":
    main()
