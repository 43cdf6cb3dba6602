"""Start real server processes for tests and benchmarks, wait until they answer, and always stop them.

The one harness: every test, benchmark and script that needs an inference API starts it with ``InferenceServer``
(or ``inference_server``, its context-manager form); Redis with ``RedisServer``; the nginx edge with ``EdgeServer``."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.waiting import DEADLINE_S

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_path() -> str:
    """PYTHONPATH for a child: the repo first, then whatever the caller had (packages installed with --target)."""
    return os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))


class ServerProcess:
    """A child process (in its own process group) that serves ``health_url`` once it is up."""

    def __init__(self, command: list[str], health_url: str, env: dict[str, str] | None = None,
                 log_path: Path | None = None, cwd: Path = REPO_ROOT) -> None:
        self.command, self.health_url, self.cwd = command, health_url, cwd
        self.env = {**os.environ, "PYTHONPATH": python_path(), **(env or {})}
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = DEADLINE_S) -> "ServerProcess":
        log_path = self.log_path or Path(os.devnull)
        with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command} exited with {self.process.returncode}; log: {self.log_path}"
                                   f"{self._log_tail()}")
            try:
                if requests.get(self.health_url, timeout=1).status_code < 500:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"{self.command} did not answer {self.health_url} within {timeout}s")

    def _log_tail(self, lines: int = 20) -> str:
        """The end of the child's log, so a failed start explains itself where the log is gone (temporary dirs)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n" + "\n".join(tail)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> "ServerProcess":
        """Starts it, unless ``start()`` already did (``with server.start(timeout=120):`` starts one process)."""
        if self.process is not None and self.process.poll() is None:
            return self
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class RedisServer:
    """A private redis-server on a free port that keeps nothing on disk; can be stopped and restarted."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def python_command(*args: str) -> list[str]:
    return [sys.executable, *args]


class InferenceServer(ServerProcess):
    """A real ``python -m services.inference`` on a free port with these settings (environment variables, e.g.
    ``DEFAULT_MODEL_DIR=...``), logging to ``log_dir/inference-<port>.log``; ``start()`` returns once ``wait_for``
    (/health, or /ready: a model is loaded) answers below 500, and ``url`` is its base URL.

    One worker process unless ``WORKERS`` says otherwise: most tests count what one process did (reloads, batches,
    serving records); ``tests/inference/test_workers.py`` runs several, and the benchmarks the defaults."""

    def __init__(self, log_dir: Path, wait_for: str = "/health", port: int | None = None, **env: str | Path) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        values = {"HOST": "127.0.0.1", "PORT": str(self.port), "DOWNLOAD": "false", "LOG_LEVEL": "info",
                  "DEVICE": "cpu", "WORKERS": "1", **{key: str(value) for key, value in env.items()}}
        super().__init__(python_command("-m", "services.inference"), f"{self.url}{wait_for}", env=values,
                         log_path=log_dir / f"inference-{self.port}.log")


@contextmanager
def inference_server(log_dir: Path, wait_for: str = "/health", **env: str | Path) -> Iterator[str]:
    """``InferenceServer`` as a context: yields its base URL once it answers, stops it afterwards."""
    with InferenceServer(log_dir, wait_for, **env) as server:
        yield server.url


class EdgeServer(ServerProcess):
    """The edge (deploy/nginx/) as a local nginx process in front of services on 127.0.0.1, started by the real
    start.sh, so its limits come from the same environment variables as in the container (``EDGE_RATE_LIMIT``, ...).

    nginx.conf names the container's ports, service names and folders; a copy with exactly those replaced (each
    replacement must match, so a change to the file cannot slip past the tests) listens on free ports of 127.0.0.1:
    ``api_url`` (8000), ``internal_url`` (8080, the API for the page), ``page_url`` (5000), ``health_url`` (8079).
    Run as root, nginx's workers run as ``nobody``: the folder it reads and writes is world-readable."""

    def __init__(self, log_dir: Path, inference_url: str, frontend_url: str, **env: str) -> None:
        ports = {name: free_port() for name in ("api", "internal", "page", "health")}
        self.api_url, self.internal_url, self.page_url = (f"http://127.0.0.1:{ports[name]}"
                                                          for name in ("api", "internal", "page"))
        self.workdir = Path(tempfile.mkdtemp(prefix="edge-"))
        self.workdir.chmod(0o755)
        conf_dir, run_dir = self.workdir / "conf", self.workdir / "run"
        edge = REPO_ROOT / "deploy" / "nginx"
        shutil.copytree(edge / "errors", conf_dir / "errors")
        folders = {"/etc/nginx/edge": str(conf_dir), "/tmp/nginx": str(run_dir)}
        _rewrite(edge / "json-errors.conf", conf_dir / "json-errors.conf", {"/etc/nginx/edge": str(conf_dir)})
        _rewrite(edge / "nginx.conf", conf_dir / "nginx.conf", {
            **folders, "listen 8000;": f"listen 127.0.0.1:{ports['api']};",
            "listen 8080;": f"listen 127.0.0.1:{ports['internal']};", '8080 "";': f'{ports["internal"]} "";',
            "listen 5000;": f"listen 127.0.0.1:{ports['page']};",
            "listen 127.0.0.1:8079;": f"listen 127.0.0.1:{ports['health']};",
            "http://inference:8000": inference_url.rstrip("/"), "http://frontend:5000": frontend_url.rstrip("/")})
        (self.workdir / "resolv.conf").write_text("nameserver 127.0.0.1\n")  # never asked: upstreams are addresses
        values = {"PATH": f"/usr/sbin:/sbin:{os.environ.get('PATH', '/usr/bin:/bin')}",
                  "EDGE_RESOLV_CONF": str(self.workdir / "resolv.conf"), "EDGE_RUN_DIR": str(run_dir),
                  "EDGE_CONF_DIR": str(conf_dir), **env}
        super().__init__(["sh", str(edge / "start.sh")], f"http://127.0.0.1:{ports['health']}/health", env=values,
                         log_path=log_dir / f"edge-{ports['api']}.log")

    def stop(self, timeout: float = 15.0) -> None:
        super().stop(timeout)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _rewrite(source: Path, target: Path, replacements: dict[str, str]) -> None:
    text = source.read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text, f"{old!r} is no longer in {source}: update tests/processes.py EdgeServer"
        text = text.replace(old, new)
    target.write_text(text, encoding="utf-8")
