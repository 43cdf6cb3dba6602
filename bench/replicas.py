"""Inference replicas behind the edge: requests/s at N = 1, 2, 3 and per CPU core (``python -m bench replicas``).

The compose stack with docker-compose.scale.yml on the container engine (only the inference replicas and the nginx
edge: ``up --no-deps --scale inference=N inference edge``), loaded through the edge's published port with ``wrk``:
single-image PNG uploads to /predict (the same bodies as bench/inference_throughput.py's case (c)) at CONNECTIONS
connections for BENCH_SECONDS, after a short warm-up. For each N: requests/s, latency percentiles, errors, and the
CPU seconds the replicas and the edge used during the run (summed over the host processes in each container's
cgroup), so ``requests_per_cpu_s`` (requests per CPU-second of the replicas) is the capacity of one busy core,
whatever the machine's core count. On a machine with C cores, N replicas cannot do better than C cores' worth:
compare ``requests_per_cpu_s`` across N, not only requests/s. docs/scaling.md sizes deployments on these figures.

Needs a container engine that answers (DOCKER_HOST) and the images (BENCH_IMAGE_TAG, default ``smoke``: what
``make compose-smoke`` builds); without them it says so and records nothing. Settings: BENCH_SECONDS (default 5),
BENCH_REPLICAS (default 1,2,3), BENCH_CONNECTIONS (default 32), BENCH_EDGE_PORT (default 18200).
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from bench.common import REPO_ROOT, data_dir, save_result
from bench.load import multipart, png, wrk_rotating_script
from bench.load import wrk as wrk_run
from shared.data import load_split

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
REPLICAS = tuple(int(n) for n in os.environ.get("BENCH_REPLICAS", "1,2,3").split(","))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
PORT = int(os.environ.get("BENCH_EDGE_PORT", "18200"))
IMAGE_TAG = os.environ.get("BENCH_IMAGE_TAG", "smoke")
PROJECT = "fmnist-bench-replicas"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _compose_command() -> list[str]:
    docker = subprocess.run(["docker", "compose", "version"], capture_output=True)
    return ["docker", "compose"] if docker.returncode == 0 else ["docker-compose"]


class Stack:
    """The edge and N replicas, under their own project name; removed (with its volumes) by ``down``."""

    def __init__(self) -> None:
        self.files = ["-f", "docker-compose.yml", "-f", "docker-compose.scale.yml"]
        self.env = {**os.environ, "COMPOSE_PROJECT_NAME": PROJECT, "IMAGE_TAG": IMAGE_TAG,
                    "INFERENCE_PORT": str(PORT), "FRONTEND_PORT": str(PORT + 1), "BIND_ADDRESS": "127.0.0.1"}
        data = data_dir()
        if (data / "FashionMNIST" / "raw").is_dir():  # the test images for /samples, instead of a download
            self.files += ["-f", "docker-compose.offline.yml"]
            self.env["FASHION_MNIST_DIR"] = str(data.resolve())
        self.command = _compose_command()

    def compose(self, *args: str) -> None:
        subprocess.run([*self.command, *self.files, *args], cwd=REPO_ROOT, env=self.env, check=True,
                       capture_output=True, timeout=300)

    def containers(self, service: str) -> list[str]:
        out = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project="
                              f"{PROJECT}", "--filter", f"label=com.docker.compose.service={service}"],
                             capture_output=True, text=True, check=True).stdout
        return out.split()

    def scale(self, replicas: int) -> None:
        self.compose("up", "-d", "--no-build", "--no-deps", "--scale", f"inference={replicas}", "inference", "edge")
        deadline = time.monotonic() + 240
        while not self._ready(replicas):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{replicas} replicas not healthy within 240 s")
            time.sleep(1)

    def _ready(self, replicas: int) -> bool:
        ids = self.containers("inference")
        if len(ids) != replicas:
            return False
        health = subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}", *ids],
                                capture_output=True, text=True).stdout.split()
        ready = subprocess.run(["curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{PORT}/ready"],
                               capture_output=True).returncode == 0
        return health == ["healthy"] * replicas and ready

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans")


def cpu_seconds(container_ids: list[str]) -> float:
    """User + system CPU seconds of the host processes in these containers' cgroups (threads included)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cgroup = (proc / "cgroup").read_text()
            if any(container in cgroup for container in container_ids):
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except OSError:
            continue  # the process ended meanwhile
    return total / CLOCK_TICKS


def wrk(script: Path, seconds: int) -> dict:
    point = wrk_run(f"http://127.0.0.1:{PORT}/predict", script, CONNECTIONS, seconds, threads=2)
    return {key: point[key] for key in ("requests", "requests_per_s", "p50_ms", "p99_ms", "errors")}


def measure(stack: Stack, script: Path, replicas: int) -> dict:
    stack.scale(replicas)
    wrk(script, 2)  # warm-up: every replica's first requests, the edge's DNS cache
    replica_ids, edge_ids = stack.containers("inference"), stack.containers("edge")
    before = cpu_seconds(replica_ids), cpu_seconds(edge_ids)
    point = wrk(script, SECONDS)
    used = cpu_seconds(replica_ids) - before[0], cpu_seconds(edge_ids) - before[1]
    return {"replicas": replicas, "connections": CONNECTIONS, **point,
            "per_replica_per_s": round(point["requests_per_s"] / replicas, 1),
            "replica_cores_busy": round(used[0] / SECONDS, 2), "edge_cores_busy": round(used[1] / SECONDS, 2),
            "requests_per_cpu_s": round(point["requests"] / used[0], 1) if used[0] > 0 else None}


def _missing() -> str | None:
    if shutil.which("docker") is None or shutil.which("wrk") is None:
        return "needs the docker client and wrk"
    if subprocess.run(["docker", "version"], capture_output=True).returncode != 0:
        return f"no container engine answers (DOCKER_HOST={os.environ.get('DOCKER_HOST', 'unset')})"
    if subprocess.run(["docker", "image", "inspect", f"fashion-mnist-inference:{IMAGE_TAG}"],
                      capture_output=True).returncode != 0:
        return f"no image fashion-mnist-inference:{IMAGE_TAG} (make compose-smoke builds it; or BENCH_IMAGE_TAG)"
    return None


def main() -> None:
    reason = _missing()
    if reason:
        print(f"\n== replicas ==\nskipped: {reason}")
        return
    images = load_split(data_dir(), train=False, download=False).images.numpy()
    picks = np.random.default_rng(7).choice(len(images), size=64, replace=False)
    uploads = [multipart(png(images[i])) for i in picks]
    script = wrk_rotating_script([body for body, _type in uploads], uploads[0][1])
    stack = Stack()
    rows = []
    try:
        stack.compose("down", "-v", "--remove-orphans")  # what an interrupted run may have left
        for replicas in REPLICAS:
            rows.append(measure(stack, script, replicas))
    finally:
        stack.down()
        script.unlink(missing_ok=True)
    save_result("replicas", rows, cores=len(os.sched_getaffinity(0)), seconds=SECONDS, image_tag=IMAGE_TAG,
                load_generator=f"wrk -t2 -c{CONNECTIONS}, single PNG uploads through the edge",
                note="the load generator, the edge and the replicas share this machine's cores")


if __name__ == "__main__":
    main()
