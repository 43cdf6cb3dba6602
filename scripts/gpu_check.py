"""``make gpu-check``: train one epoch and serve a few hundred predictions on an NVIDIA GPU, without Docker.

1. the trainer's own ``run`` trains one epoch (all 55,000 training images unless ``--train-limit``) on the device
   and publishes the model into a temporary artifacts folder;
2. the real ``python -m services.inference`` serves that model with ``DEVICE`` set to the device, and answers
   ``--predictions`` test images: as one JSON batch of 64 per request, then as single PNG uploads from 16 clients.
Prints images/s for training and for both kinds of serving, and checks that the served predictions are mostly right
(one epoch reaches about 80 %). Exit status 0 = all fine; 2 = no CUDA device (the message says what torch sees).

``--device cpu`` runs the same path on the CPU (to check the script itself on a machine without a GPU).
"""

import argparse
import io
import json
import logging
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import torch
from PIL import Image

from services.trainer.config import TrainSettings
from services.trainer.signals import StopFlag
from services.trainer.train import run
from shared.data import load_split
from shared.device import DeviceUnavailableError, resolve_device
from tests.processes import REPO_ROOT, InferenceServer

BATCH = 64
CLIENTS = 16


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make gpu-check", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device", default=os.environ.get("GPU_CHECK_DEVICE", "cuda"), choices=("cuda", "cpu"))
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", "data")),
                        help="torchvision root with FashionMNIST/raw/ (downloaded when missing)")
    parser.add_argument("--train-limit", type=int, default=0, help="training images (0 = all 55,000)")
    parser.add_argument("--predictions", type=int, default=512, help="test images sent to /predict, each way")
    return parser.parse_args(argv)


def check_device(name: str) -> torch.device:
    try:
        return resolve_device(name)
    except DeviceUnavailableError:
        cuda = torch.version.cuda or "none (a CPU-only torch build)"
        print(f"gpu-check: FAIL: no CUDA device: torch {torch.__version__} (CUDA build: {cuda}) sees "
              f"{torch.cuda.device_count()} GPUs. Run it on a machine with an NVIDIA GPU and its driver "
              "(nvidia-smi works), or use --device cpu to check the script itself.", file=sys.stderr)
        raise SystemExit(2) from None


def train(args: argparse.Namespace, artifacts: Path) -> dict:
    settings = TrainSettings(data_dir=args.data_dir, artifacts_dir=artifacts, epochs=1, device=args.device,
                             train_limit=args.train_limit, retrain=True)
    assert run(settings, StopFlag()) == 0, "training failed"
    metrics = json.loads((artifacts / "metrics.json").read_text())
    epoch = metrics["history"][0]
    return {"version": metrics["model_version"], "images_per_s": epoch["images"] / epoch["seconds"],
            "test_accuracy": metrics["test_accuracy"]}


def png(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.numpy()).save(buffer, format="PNG")
    return buffer.getvalue()


def serve(args: argparse.Namespace, artifacts: Path, workdir: Path, version: str) -> dict:
    test = load_split(args.data_dir, train=False, download=False)
    images, labels = test.images[:args.predictions], test.labels[:args.predictions].tolist()
    server = InferenceServer(workdir, wait_for="/ready", DEVICE=args.device, ARTIFACTS_DIR=artifacts,
                             DEFAULT_MODEL_DIR=workdir / "no-default-model", DATA_DIR=args.data_dir,
                             LOG_LEVEL="warning", WORKERS="0")  # the defaults: one process on a GPU
    url = server.url
    with server.start(timeout=120):
        model = requests.get(f"{url}/metrics", timeout=10).json()["model"]
        assert model["version"] == version and model["device"].startswith(args.device), f"serving {model}"
        with requests.Session() as session:  # warm-up: the first pass on a GPU compiles kernels
            session.post(f"{url}/predict", json={"instances": images[:BATCH].tolist()}, timeout=60).raise_for_status()
            started = time.perf_counter()
            batched = []
            for start in range(0, len(labels), BATCH):
                answer = session.post(f"{url}/predict", json={"instances": images[start:start + BATCH].tolist()},
                                      timeout=60)
                answer.raise_for_status()
                batched += [p["class_id"] for p in answer.json()["predictions"]]
            batch_seconds = time.perf_counter() - started
        bodies = [png(image) for image in images]

        def one(body: bytes) -> int:
            answer = requests.post(f"{url}/predict", files={"file": ("x.png", body, "image/png")}, timeout=60)
            answer.raise_for_status()
            return answer.json()["class_id"]

        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            single = list(pool.map(one, bodies))
        single_seconds = time.perf_counter() - started
    correct = sum(p == label for p, label in zip(batched, labels, strict=True)) / len(labels)
    assert single == batched, "a PNG upload and the same pixels as JSON got different answers"
    return {"batch_images_per_s": len(labels) / batch_seconds, "single_images_per_s": len(labels) / single_seconds,
            "accuracy": correct}


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    device = check_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"gpu-check: device {device} ({name}), torch {torch.__version__}, data {args.data_dir}")
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        workdir = Path(tmp)
        trained = train(args, workdir / "artifacts")
        print(f"gpu-check: training  {trained['images_per_s']:,.0f} img/s (one epoch; test accuracy "
              f"{trained['test_accuracy']:.4f}, model {trained['version']})")
        served = serve(args, workdir / "artifacts", workdir, trained["version"])
    print(f"gpu-check: serving   {served['batch_images_per_s']:,.0f} img/s as JSON batches of {BATCH}, "
          f"{served['single_images_per_s']:,.0f} img/s as single PNG uploads ({CLIENTS} clients); "
          f"{args.predictions} test images each way, {served['accuracy']:.1%} right")
    if served["accuracy"] < 0.6:
        print("gpu-check: FAIL: the served model is mostly wrong", file=sys.stderr)
        return 1
    print("gpu-check: PASS")
    return 0


if __name__ == "__main__":
    os.chdir(REPO_ROOT)
    sys.exit(main(sys.argv[1:]))
