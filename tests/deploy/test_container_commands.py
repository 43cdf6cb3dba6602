"""Each image's command, run outside Docker with the environment docker-compose gives its container.

The command comes from the Dockerfile's CMD and the variables from `docker-compose config`; only what Docker
itself would provide is translated: in-image paths (/app/...) become local folders, service names become
127.0.0.1, HOST is 127.0.0.1 and ports are free ones. This is the first `docker compose up` story: the API
answers at once with the default model, the page works, the trainer publishes and the API switches to its model;
a second trainer start with the same settings exits at once.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.deploy.helpers import BASE_FILE, compose_config, parse_dockerfile
from tests.processes import REPO_ROOT, ServerProcess, free_port
from tests.waiting import wait_until


def container_command(name: str) -> list[str]:
    command = parse_dockerfile(REPO_ROOT / "services" / name / "Dockerfile")[-1].all("CMD")[-1].words()
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def local_env(service: dict, paths: dict[str, Path], **overrides: str) -> dict[str, str]:
    """The service's compose environment with /app/... paths replaced by local folders, plus ``overrides``."""
    env = {}
    for key, value in service["environment"].items():
        value = "" if value is None else str(value)
        for container_path, local in paths.items():
            if value == container_path:
                value = str(local)
        assert not value.startswith("/app/"), f"{key}={value}: no local folder given for this container path"
        env[key] = value
    return {**env, **overrides}


@pytest.fixture(scope="module")
def compose_services() -> dict:
    return compose_config(BASE_FILE)["services"]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    """The (initially empty) artifacts volume the trainer writes and the inference service reads."""
    return tmp_path_factory.mktemp("artifacts-volume")


@pytest.fixture(scope="module")
def serving(tmp_path_factory) -> Path:
    """The `serving` volume: the inference service writes what it serves there, the trainer reads it."""
    return tmp_path_factory.mktemp("serving-volume")


@pytest.fixture(scope="module")
def inference(compose_services, artifacts, serving, tiny_data_dir, default_model_dir, tmp_path_factory):
    port = free_port()
    env = local_env(compose_services["inference"],
                    {"/app/data": tiny_data_dir, "/app/artifacts": artifacts, "/app/models/default": default_model_dir,
                     "/app/serving": serving},
                    HOST="127.0.0.1", PORT=str(port))
    log = tmp_path_factory.mktemp("logs") / "inference.log"
    with ServerProcess(container_command("inference"), f"http://127.0.0.1:{port}/ready", env, log) as server:
        yield server, f"http://127.0.0.1:{port}"


def test_inference_command_serves_the_default_model_at_once(inference, default_model_dir):
    _, url = inference
    ready = requests.get(f"{url}/ready", timeout=5)
    assert ready.status_code == 200
    default_version = json.loads((default_model_dir / "latest.json").read_text())["model_version"]
    assert ready.json()["model_version"] == default_version
    assert requests.get(f"{url}/metrics", timeout=5).json()["model"]["source"] == "default"


def test_frontend_command_serves_the_page(compose_services, inference, redis_server, tmp_path):
    _, api_url = inference
    port = free_port()
    service = compose_services["frontend"]
    env = local_env(service, {}, HOST="127.0.0.1", PORT=str(port),
                    INFERENCE_URL=service["environment"]["INFERENCE_URL"].replace("inference", "127.0.0.1").replace(
                        ":8000", ":" + api_url.rsplit(":", 1)[1]),
                    REDIS_URL=redis_server.url)
    with ServerProcess(container_command("frontend"), f"http://127.0.0.1:{port}/health", env,
                       tmp_path / "frontend.log"):
        health = requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        assert health["inference"]["ready"] is True and health["redis"]["reachable"] is True
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]


def test_trainer_command_publishes_a_model_the_api_switches_to_and_does_not_retrain(
        compose_services, inference, artifacts, serving, tmp_path):
    data = tmp_path / "trainer-data"
    shutil.copytree(inference[0].env["DATA_DIR"], data)  # the trainer's own data volume
    # A smoke run as a user would ask for it (the tiny data set has 600 images; BATCH_SIZE 64 gives the one-cycle
    # schedule enough steps: with 4 steps per run OneCycleLR divides by zero, see the report).
    env = {**local_env(compose_services["trainer"], {"/app/data": data, "/app/artifacts": artifacts,
                                                      "/app/serving": serving}),
           "EPOCHS": "1", "VAL_SIZE": "100", "BATCH_SIZE": "64", "NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    first = subprocess.run(container_command("trainer"), cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    version = json.loads((artifacts / "latest.json").read_text())["model_version"]
    assert (artifacts / "models" / f"{version}.pt").is_file()

    # The API polls the manifest and hot-reloads the trained model.
    _, url = inference
    model = wait_until(lambda: (served := requests.get(f"{url}/metrics", timeout=5).json()["model"])["version"] ==
                       version and served, "the API to serve the trained model")
    assert model["source"] == "artifacts"
    # ... and records it in the serving volume (written right after the swap), where the trainer's retention looks.
    expected = {("artifacts", f"models/{version}.pt")}  # one record per worker process, all naming it
    wait_until(lambda: {(record["source"], record["checkpoint"]) for record in
                        map(json.loads, (path.read_text() for path in serving.glob("*.json")))} == expected,
               f"serving records naming {expected}")

    # A second `docker compose up` (RETRAIN=0): the trainer sees the finished run and exits 0 without training.
    second = subprocess.run(container_command("trainer"), cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "already finished" in second.stderr and "RETRAIN=1" in second.stderr
    assert json.loads((artifacts / "latest.json").read_text())["model_version"] == version
