"""The stack the end-to-end tests drive: Redis, the inference API and the web page as real processes."""

from pathlib import Path

import requests

from tests.processes import InferenceServer, RedisServer, ServerProcess, free_port, python_command
from tests.waiting import wait_until


class Stack:
    """Redis + inference + frontend as real processes (each its own process group). The page's Redis and API
    timeouts are generous: on a busy machine an expected cache hit must not become a miss (0.2 s by default)."""

    def __init__(self, tiny_artifacts: Path, tiny_data_dir: Path, workdir: Path) -> None:
        self.redis = RedisServer(workdir)
        page_port = free_port()
        self.api_process = InferenceServer(workdir, wait_for="/ready", ARTIFACTS_DIR=tiny_artifacts,
                                           DEFAULT_MODEL_DIR=workdir / "no-default-model", DATA_DIR=tiny_data_dir)
        self.api, self.page = self.api_process.url, f"http://127.0.0.1:{page_port}"
        self.page_process = ServerProcess(
            python_command("-m", "services.frontend"), f"{self.page}/health",
            {"HOST": "127.0.0.1", "PORT": str(page_port), "INFERENCE_URL": self.api, "REDIS_URL": self.redis.url,
             "SECRET_KEY": "e2e-test-key", "REDIS_TIMEOUT_S": "10", "API_READ_TIMEOUT_S": "30",
             "API_HEALTH_TIMEOUT_S": "30"},
            workdir / "frontend.log")

    def start(self) -> "Stack":
        self.redis.start()
        self.api_process.start()
        self.page_process.start()
        return self

    def process_groups(self) -> dict[str, int]:
        return {"inference": self.api_process.process.pid, "frontend": self.page_process.process.pid,
                "redis": self.redis.process.pid}

    def stop(self) -> None:
        """Idempotent: stopping a stopped process does nothing."""
        self.page_process.stop()
        self.api_process.stop()
        self.redis.stop()


def wait_for_samples(api: str) -> int:
    """The API loads its test images in the background after it is ready."""
    return wait_until(lambda: requests.get(f"{api}/metrics", timeout=5).json()["samples"]["available"],
                      "the API's test images")
