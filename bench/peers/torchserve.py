"""TorchServe 0.12 serving the project's model, for ``python -m bench serving_peers``.

``bench/peers/setup_torchserve.sh`` installs it in its own virtual environment (``.torchserve-venv``, git-ignored);
``torchserve_server()`` archives the default checkpoint with ``torchserve_handler.py``, starts TorchServe in the
foreground on free ports, waits until a prediction answers and stops it afterwards. Tuned as a fair peer on a
small machine: one Python worker per core with one torch thread each, no batching delay, token authorisation and
config snapshots off. ``None`` (with the reason printed) when it cannot be installed or started.
"""

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.common import REPO_ROOT
from bench.load import multipart
from tests.processes import free_port

HERE = Path(__file__).resolve().parent
VENV = HERE / ".torchserve-venv"


def available() -> str | None:
    """None when TorchServe can run here, else why not (after trying the setup script once)."""
    if not (VENV / "bin" / "torchserve").is_file():
        result = subprocess.run(["bash", str(HERE / "setup_torchserve.sh")], capture_output=True, text=True,
                                timeout=900)
        print(result.stdout.strip()[-500:])
    if not (VENV / "bin" / "torchserve").is_file():
        return "TorchServe is not installed (bench/peers/setup_torchserve.sh could not set it up)"
    if subprocess.run(["bash", "-c", "command -v java"], capture_output=True).returncode != 0:
        return "no java for TorchServe's frontend (apt-get install -y openjdk-17-jre-headless)"
    return None


@contextlib.contextmanager
def torchserve_server(checkpoint: Path, png: bytes, workers: int) -> Iterator[str]:
    """TorchServe with the model ``fmnist``; yields the URL to POST a multipart ``data`` field to."""
    work = Path(tempfile.mkdtemp(prefix="bench-torchserve-"))
    store = work / "model-store"
    store.mkdir()
    subprocess.run([str(VENV / "bin" / "torch-model-archiver"), "--model-name", "fmnist", "--version", "1.0",
                    "--serialized-file", str(checkpoint), "--handler", str(HERE / "torchserve_handler.py"),
                    "--export-path", str(store)], check=True, cwd=work)
    port, management, metrics = free_port(), free_port(), free_port()
    (work / "config.properties").write_text(
        f"inference_address=http://127.0.0.1:{port}\nmanagement_address=http://127.0.0.1:{management}\n"
        f"metrics_address=http://127.0.0.1:{metrics}\ndefault_workers_per_model={workers}\n"
        "job_queue_size=1000\ndisable_token_authorization=true\ninstall_py_dep_per_model=false\n"
        "enable_metrics_api=false\n")
    env = {**os.environ, "FMNIST_REPO": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '')}", "LOG_LOCATION": str(work / "logs"),
           "METRICS_LOCATION": str(work / "logs")}
    command = [str(VENV / "bin" / "torchserve"), "--start", "--foreground", "--ncs", "--disable-token-auth",
               "--model-store", str(store), "--models", "fmnist=fmnist.mar", "--ts-config",
               str(work / "config.properties")]
    with open(work / "torchserve.log", "ab") as log:
        process = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}/predictions/fmnist"
    body, content_type = multipart(png, field="data")
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.post(url, content=body, headers={"content-type": content_type}, timeout=5).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"TorchServe did not start; see {work / 'torchserve.log'}")
            time.sleep(0.5)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
