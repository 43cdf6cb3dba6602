"""Inference settings, read from environment variables (``PORT=8001 BATCHING=false python -m services.inference``)."""

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from shared.device import device_name
from shared.secret_files import SettingsWithSecretFiles


class Settings(SettingsWithSecretFiles):  # API_KEYS and ADMIN_TOKEN also from API_KEYS_FILE, ADMIN_TOKEN_FILE
    # hide_input_in_errors: a refused API_KEYS or ADMIN_TOKEN must not be printed in the error that stops the start
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    artifacts_dir: Path = Field(Path("artifacts"), description="trainer output; its latest.json names the model")
    default_model_dir: Path = Field(Path("models/default"), description="model served until artifacts has one")
    data_dir: Path = Field(Path("data"), description="folder with FashionMNIST/raw/ (the test split, "
                                                       "for /samples)")
    download: bool = Field(True, description="download FashionMNIST for /samples when the files are missing")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda when available, else cpu")
    backend: Literal["auto", "onnx", "torch"] = Field(
        "auto", description="auto = ONNX Runtime on the CPU when the model has its graph and card (every published "
                            "model and the default do), else torch (always torch on CUDA); onnx = graphs only (a "
                            "model without one is refused); torch = PyTorch everywhere")
    workers: int = Field(0, ge=0, description="server processes, each with its own model, batcher and hot "
                                              "reload (0 = one per core on the CPU, one on a GPU)")
    threads: int = Field(0, ge=0, description="model threads per process, torch's or the ONNX Runtime "
                                              "session's (0: 1 with several workers, else all cores but one, at "
                                              "least 1: the event loop keeps a core)")
    host: str = Field("127.0.0.1", description="listen address (the images set 0.0.0.0)")
    port: int = Field(8000, ge=1, le=65535, description="listen port")
    log_level: str = Field("info", description="uvicorn's and the app's log level")
    worker_ping_timeout_s: int = Field(60, ge=1, description="with several workers, how long uvicorn's supervisor "
                                       "waits for a worker to answer its ping before it kills and replaces it "
                                       "(uvicorn's default, 5 s, kills workers still importing their model on a "
                                       "busy host)")
    shutdown_delay_s: float = Field(0.0, ge=0, description="after SIGTERM, keep serving this long before the "
                                    "graceful shutdown, so load balancers that follow DNS stop sending first "
                                    "(Swarm: docker-compose.swarm.yml; services/inference/draining.py)")

    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="largest request body accepted")
    # A body must average MIN_BODY_RATE bytes/s once BODY_GRACE_S have passed (app/body_rate.py): the largest one
    # then arrives within 10 + 4194304 / 16384 = 266 s or is cut (within a 0.5 s sweep), a 28x28 JSON image within 10 s.
    min_body_rate: int = Field(16384, ge=0, description="bytes per second a request body must average after "
                                                        "BODY_GRACE_S; slower ones are cut with 408, so a body of n "
                                                        "bytes ends within BODY_GRACE_S + n / MIN_BODY_RATE s (0: no "
                                                        "limit)")
    body_grace_s: float = Field(10.0, gt=0, description="how long any request body may take before MIN_BODY_RATE "
                                                        "counts")
    max_instances: int = Field(256, ge=1, description="most images in one JSON `instances` request")
    max_files: int = Field(64, ge=1, description="most files in one multipart request")
    max_image_pixels: int = Field(16_000_000, ge=784, description="largest decoded picture (width x height)")

    batching: bool = Field(True, description="group concurrent requests into one forward pass")
    # 16: the model is ~45% faster per image in passes of 16 than of 64 (cache), and a short pass bounds how
    # long a request that just missed one waits: at 64 concurrent clients the p99 fell from ~180 to ~125 ms
    # against a cap of 64, at the same throughput (bench/inference_throughput.py measures both pass sizes).
    max_batch_size: int = Field(16, ge=1, description="most images in one forward pass (bigger requests: several)")
    max_batch_wait_ms: float = Field(
        2.0, ge=0, description="how long a batch may wait for requests already being parsed; a lone one never waits"
    )
    reload_interval_s: float = Field(2.0, gt=0, description="how often the artifacts manifest and the pin "
                                                            "are checked")
    serving_dir: Path | None = Field(None, description="where this process records the model it serves, so the "
                                                       "trainer's retention never deletes it (shared/serving.py), and "
                                                       "where the pin lives (pin/pinned.json); unset: pinning is "
                                                       "refused with 409")
    replica_name: str = Field(default_factory=socket.gethostname,
                              description="names this process in every answer's X-Served-By header (default: the "
                                          "host name, under Docker the container's id; X-Served-By-Worker "
                                          "names the worker process's pid)")
    api_keys: SecretStr = Field(SecretStr(""), description="comma-separated API keys; when set, the prediction "
                                "endpoints (/predict, /explain, /samples, V2 infer) need `Authorization: "
                                "Bearer <key>`, 401 otherwise (empty: they are open)")
    admin_token: SecretStr = Field(SecretStr(""), description="the token management endpoints (model pin and "
                                   "rollback) need as `Authorization: Bearer <token>`; empty: they are disabled, "
                                   "403 for everyone")
    forwarded_allow_ips: str = Field("127.0.0.1,::1", description="addresses (or networks) whose X-Forwarded-For "
                                                                 "is trusted: the edge's (uvicorn's setting)")

    @field_validator("api_keys", "admin_token")
    @classmethod
    def _sendable_in_a_header(cls, value: SecretStr) -> SecretStr:
        """A secret a client cannot send as `Bearer <secret>` would lock everyone out: say so at start (without the
        value). Headers arrive as latin-1 and the scheme splits on spaces, so keys are visible ASCII, no spaces."""
        for secret in value.get_secret_value().split(","):
            if secret.strip() and not (secret.strip().isascii() and secret.strip().isprintable()
                                       and " " not in secret.strip()):
                raise ValueError("every key must be printable ASCII without spaces (e.g. python3 -c 'import secrets; "
                                 "print(secrets.token_urlsafe(32))')")
        return value

    @property
    def api_key_list(self) -> list[str]:
        """API_KEYS split on commas, blanks dropped."""
        return [key.strip() for key in self.api_keys.get_secret_value().split(",") if key.strip()]

    @property
    def processes(self) -> int:
        """Worker processes: WORKERS; by default one per core this process may run on, and one on a GPU (one CUDA
        context, and micro-batching there fills the device better than processes competing for it)."""
        if self.workers:
            return self.workers
        on_gpu = self.device == "cuda" or (self.device == "auto" and device_name("auto") == "cuda")
        return 1 if on_gpu else len(os.sched_getaffinity(0))

    @property
    def model_threads(self) -> int:
        """Threads for the forward pass. With a worker per core, one each: the cores are already all busy. In a
        single process, one core is left to the event loop, which parses requests and encodes answers in Python:
        on 2 cores, 2 model threads made the model faster but starved the HTTP side (the batch form of /predict
        reached 55 % of the raw model's throughput instead of 79 %)."""
        if self.threads:
            return self.threads
        return 1 if self.processes > 1 else max(1, len(os.sched_getaffinity(0)) - 1)

