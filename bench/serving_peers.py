"""The project's server beside its peers, in one run (``python -m bench serving_peers``).

Servers, all on the same weights and temperature (models/default) and the same real test PNG (test image 0):

* ``project``: ``python -m services.inference`` on its defaults (a worker per core, ONNX Runtime, micro-batching);
* ``project, 1 process``: the same with WORKERS=1 (the layout before; docs/benchmarks.md, "Process layout");
* ``naive FastAPI``: ``bench/peers/naive_fastapi.py`` (UploadFile, PIL, PyTorch eager, one process);
* ``TorchServe 0.12``: in its own venv (``bench/peers/setup_torchserve.sh``), a worker per core with one torch
  thread each; skipped, with the reason, when it cannot be installed.

The project's server also answers the same image (test image 0) on its other paths, side by side in the same run:
``project /predict JSON`` (``{"pixels": ...}``), ``project V2 JSON`` and ``project V2 binary`` (the Open Inference
Protocol, ``routes/v2.py``: a UINT8 [1, 28, 28] tensor as JSON ``data``, or as raw bytes with every output binary).

Single-PNG uploads with ``wrk`` at concurrency 1, 16 and 64 (BENCH_SECONDS per point, default 5; the servers
alternate within each concurrency for BENCH_ROUNDS rounds, default 1, and each figure is the median). Then the
batch form of /predict (64 PNG files per request) and of V2 binary (a [64, 28, 28] tensor) against the raw ONNX
Runtime rate in-process (one thread, as a worker runs it, and one session per core in parallel; wrk posts the
batches too), and the accuracy over the 10,000 test images through the API against the model's own. Goals are
printed and saved with the JSON.
"""

import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import torch

from bench.common import data_dir, goal, model_dir, save_result
from bench.load import multipart, png, v2_infer_body, wrk, wrk_script
from bench.peers import torchserve
from services.inference.app.backends import OnnxBackend
from shared.artifacts import read_manifest
from shared.checkpoint import load_checkpoint
from shared.data import load_split
from shared.onnx_export import graph_path
from shared.preprocess import pixels_to_batch
from tests.processes import ServerProcess, free_port, inference_server

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
CONCURRENCIES = (1, 16, 64)
BATCH = 64
CORES = len(os.sched_getaffinity(0))
V2_INFER = "/v2/models/fashion-mnist/infer"


@contextlib.contextmanager
def naive_server(log_dir: Path):
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.peers.naive_fastapi:app", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]
    with ServerProcess(command, f"http://127.0.0.1:{port}/docs", env={"NAIVE_MODEL_DIR": str(model_dir())},
                       log_path=log_dir / "naive.log"):
        yield f"http://127.0.0.1:{port}/predict"


def raw_onnx(images: np.ndarray, sessions: int, seconds: float) -> float:
    """Images/s of ONNX Runtime alone on batches of 64, ``sessions`` one-thread sessions running in parallel."""
    graph = graph_path(read_manifest(model_dir()).checkpoint_path)
    backends = [OnnxBackend(graph, threads=1) for _ in range(sessions)]
    batches = [images[i:i + BATCH] for i in range(0, len(images) - BATCH + 1, BATCH)]
    counts = [0] * sessions

    def run(k: int, until: float) -> None:
        i = k
        while time.perf_counter() < until:
            backends[k].logits(batches[i % len(batches)])
            counts[k] += BATCH
            i += 1

    for backend in backends:
        backend.logits(batches[0])
    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(k, started + seconds)) for k in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def batch_against_raw(url: str, images: np.ndarray) -> tuple[float, float, float, float]:
    """The batch form of /predict (64 PNG files per request, sent by wrk, two requests in flight per core: wrk
    costs the machine far less than a Python client would), V2 binary with 64 images per tensor, and the raw
    rates, in alternating windows (other work on the machine comes and goes); the best window of each."""
    scripts = {"/predict": wrk_script(*multipart_files([png(image) for image in images[:BATCH]])),
               V2_INFER: wrk_script(*v2_infer_body(images[:BATCH], binary=True))}
    window = max(1, SECONDS // 2)
    api, v2, one, every = [], [], [], []
    for _ in range(3):
        for path, rates in (("/predict", api), (V2_INFER, v2)):
            point = wrk(f"{url}{path}", scripts[path], 2 * CORES, window)
            if point["non_2xx"] or point["socket_errors"]:
                raise RuntimeError(f"the batch endpoint {path} failed requests: {point}")
            rates.append(point["requests_per_s"] * BATCH)
        one.append(raw_onnx(images, 1, window))
        every.append(raw_onnx(images, CORES, window))
    return max(api), max(v2), max(one), max(every)


def multipart_files(pngs: list[bytes]) -> tuple[bytes, str]:
    boundary = "benchbatch5c1e"
    parts = [(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{i}.png\"\r\n"
              "Content-Type: image/png\r\n\r\n").encode() + data + b"\r\n" for i, data in enumerate(pngs)]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def api_accuracy(url: str, images: np.ndarray, labels: np.ndarray) -> dict:
    """Every test image through /predict (64 PNGs per request) against the model run directly."""
    predicted = []
    with httpx.Client(timeout=60) as client:
        for start in range(0, len(images), BATCH):
            body, content_type = multipart_files([png(image) for image in images[start:start + BATCH]])
            answer = client.post(f"{url}/predict", content=body, headers={"content-type": content_type})
            answer.raise_for_status()
            predicted.extend(p["class_id"] for p in answer.json()["predictions"])
    model = load_checkpoint(read_manifest(model_dir()).checkpoint_path).build_model("cpu")
    with torch.inference_mode():
        direct = torch.cat([model(pixels_to_batch(torch.from_numpy(images[i:i + 1000]))).argmax(1)
                            for i in range(0, len(images), 1000)]).numpy()
    predicted = np.array(predicted)
    return {"images": len(images), "same_as_model": int((predicted == direct).sum()),
            "api_accuracy": float((predicted == labels).mean()), "model_accuracy": float((direct == labels).mean())}


def main() -> None:
    split = load_split(data_dir(), train=False, download=False)
    images, labels = split.images.numpy(), split.labels.numpy()
    sample = png(images[0])
    log_dir = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    script = wrk_script(*multipart(sample))
    ts_script = wrk_script(*multipart(sample, field="data"))
    skipped = torchserve.available()
    if skipped:
        print(f"SKIP TorchServe: {skipped}")
    common = {"ARTIFACTS_DIR": log_dir / "no-artifacts", "DEFAULT_MODEL_DIR": model_dir(), "LOG_LEVEL": "warning",
              "DATA_DIR": log_dir / "no-data"}
    rows: list[dict] = []
    with contextlib.ExitStack() as stack:
        project = stack.enter_context(inference_server(log_dir, WORKERS="0", **common))
        servers = {
            "project": (f"{project}/predict", script),
            # the same server on its other paths: the own JSON, and the Open Inference Protocol
            "project /predict JSON": (f"{project}/predict", wrk_script(
                json.dumps({"pixels": images[0].tolist()}).encode(), "application/json")),
            "project V2 JSON": (project + V2_INFER, wrk_script(*v2_infer_body(images[:1], binary=False))),
            "project V2 binary": (project + V2_INFER, wrk_script(*v2_infer_body(images[:1], binary=True))),
            "project, 1 process": (stack.enter_context(inference_server(log_dir, WORKERS="1", **common)) + "/predict",
                                   script),
            "naive FastAPI": (stack.enter_context(naive_server(log_dir)), script),
        }
        if not skipped:
            checkpoint = read_manifest(model_dir()).checkpoint_path
            servers["TorchServe 0.12"] = (stack.enter_context(torchserve.torchserve_server(checkpoint, sample, CORES)),
                                          ts_script)
        for url, lua in servers.values():
            wrk(url, lua, 16, 1)  # warm up every worker and connection pool
        for concurrency in CONCURRENCIES:
            runs: dict[str, list[dict]] = {name: [] for name in servers}
            for _ in range(ROUNDS):
                for name, (url, lua) in servers.items():
                    runs[name].append(wrk(url, lua, concurrency, SECONDS))
            for name, points in runs.items():
                rows.append({"server": name, "concurrency": concurrency,
                             **{key: statistics.median(p[key] for p in points) for key in points[0]}})
        batch, v2_batch, one_thread, every_core = batch_against_raw(project, images[:1024])
        accuracy = api_accuracy(project, images, labels)
    throughput = {"batch_endpoint_images_per_s": round(batch, 1), "v2_binary_batch_images_per_s": round(v2_batch, 1),
                  "raw_onnx_1_thread_images_per_s": round(one_thread, 1),
                  f"raw_onnx_{CORES}_sessions_images_per_s": round(every_core, 1)}
    lines = goals(rows, throughput, one_thread, every_core, accuracy)
    save_result("serving_peers", rows, throughput=throughput, accuracy=accuracy, goals=lines, seconds_per_point=SECONDS,
                rounds=ROUNDS, cores=CORES, torchserve_skipped=skipped, load_average=os.getloadavg(),
                load_generator="wrk -t1: one real test PNG (multipart), or 64 of them per batch request")
    print(throughput, accuracy, sep="\n")
    for line in lines:
        print(line)


def goals(rows: list[dict], throughput: dict, one_thread: float, every_core: float, accuracy: dict) -> list[str]:
    def find(server: str, concurrency: int) -> dict | None:
        return next((r for r in rows if r["server"] == server and r["concurrency"] == concurrency), None)

    lines = []
    c16, peer = find("project", 16), find("TorchServe 0.12", 16)
    if peer is not None:
        ratio = c16["requests_per_s"] / peer["requests_per_s"]
        lines.append(goal(ratio >= 3 and c16["p99_ms"] <= 40, f"c16: {c16['requests_per_s']:.0f} req/s = {ratio:.2f}x "
                                                               f"TorchServe's {peer['requests_per_s']:.0f} (>= 3x), "
                                                               f"p99 {c16['p99_ms']:.1f} ms (<= 40)"))
    naive = find("naive FastAPI", 16)
    lines.append(f"info  c16: {c16['requests_per_s'] / naive['requests_per_s']:.2f}x the naive FastAPI baseline")
    for concurrency in CONCURRENCIES:  # the Open Inference Protocol beside the own API, same server, same image
        points = [(name, find(f"project {name}", concurrency)) for name in ("V2 JSON", "V2 binary", "/predict JSON")]
        lines.append(f"info  c{concurrency}: " + ", ".join(f"{name} {point['requests_per_s']:.0f} req/s (p50 "
                                                          f"{point['p50_ms']:.2f} ms)" for name, point in points))
    c1 = find("project", 1)
    lines.append(goal(c1["p50_ms"] <= 1.5, f"c1: p50 {c1['p50_ms']:.2f} ms (<= 1.5)"))
    batch = throughput["batch_endpoint_images_per_s"]
    lines.append(goal(batch >= 0.8 * one_thread,
                       f"batch /predict {batch:.0f} img/s = {batch / one_thread:.0%} of raw ONNX Runtime on one thread "
                       f"({one_thread:.0f}; >= 80%); {batch / every_core:.0%} of one session per core "
                       f"({every_core:.0f})"))
    lines.append(f"info  V2 binary, 64 images per tensor: {throughput['v2_binary_batch_images_per_s']:.0f} img/s "
                 f"(64 PNGs per /predict: {batch:.0f})")
    errors = sum(r["non_2xx"] + r["socket_errors"] for r in rows if r["server"].startswith("project"))
    lines.append(goal(errors == 0, f"{errors} non-2xx answers or socket errors from the project's servers (0)"))
    lines.append(goal(accuracy["same_as_model"] == accuracy["images"]
                       and accuracy["api_accuracy"] == accuracy["model_accuracy"],
                       f"accuracy through the API {accuracy['api_accuracy']:.4f} = the model's "
                       f"{accuracy['model_accuracy']:.4f}; same class on "
                       f"{accuracy['same_as_model']}/{accuracy['images']}"))
    return lines


if __name__ == "__main__":
    main()
