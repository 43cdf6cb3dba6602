"""`scripts/stack.sh up|down` (`make up` / `make down`): the whole stack as local processes, and a clean stop."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.deploy.procfs import alive, assert_all_gone, processes_with_env
from tests.processes import REPO_ROOT, free_port
from tests.waiting import wait_until

STACK = REPO_ROOT / "scripts" / "stack.sh"


def stack(command: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """The script, given far more time than it needs: its own START_TIMEOUT (120 s per service) decides first."""
    return subprocess.run(["bash", str(STACK), command], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def pids(run_dir: Path) -> dict[str, int]:
    return {path.stem: int(path.read_text()) for path in run_dir.glob("*.pid")}


@pytest.fixture
def stack_env(tmp_path, tiny_data_dir, default_model_dir) -> dict[str, str]:
    """Free ports, a private run dir, the tiny data set (no download) and the default model."""
    return {**os.environ, "PYTHON": sys.executable, "RUN_DIR": str(tmp_path / "run"),
            "INFERENCE_PORT": str(free_port()), "FRONTEND_PORT": str(free_port()),
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "DATA_DIR": str(tiny_data_dir), "DOWNLOAD": "false",
            "DEFAULT_MODEL_DIR": str(default_model_dir)}


def test_up_serves_page_and_api_and_down_stops_exactly_what_up_started(stack_env, tiny_artifacts, tmp_path,
                                                                        redis_server):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, artifacts)  # already has a model: no training starts
    env = {**stack_env, "ARTIFACTS_DIR": str(artifacts)}
    run_dir = Path(env["RUN_DIR"])
    api, page = f"http://127.0.0.1:{env['INFERENCE_PORT']}", f"http://127.0.0.1:{env['FRONTEND_PORT']}"
    try:
        up = stack("up", env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"{page}/" in up.stdout and f"{api}/docs" in up.stdout and str(run_dir / "logs") in up.stdout
        started = pids(run_dir)
        assert set(started) == {"redis", "inference", "frontend"}, "a private redis, no trainer (a model exists)"

        version = json.loads((artifacts / "latest.json").read_text())["model_version"]
        assert requests.get(f"{api}/ready", timeout=5).json()["model_version"] == version
        health = requests.get(f"{page}/health", timeout=5).json()
        assert health["inference"]["ready"] and health["redis"]["reachable"]
        assert requests.get(f"{page}/", timeout=10).status_code == 200

        again = stack("up", env)  # idempotent: nothing started twice
        assert again.returncode == 0 and "already running" in again.stdout
        assert pids(run_dir) == started
    finally:
        down = stack("down", env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert_all_gone(started)
    assert processes_with_env(f"RUN_DIR={run_dir}") == [], "nor anything else (every Python process inherits RUN_DIR)"
    assert not list(run_dir.glob("*.pid"))
    assert stack("down", env).returncode == 0, "down is idempotent"
    assert alive(redis_server.process.pid), "down never touches what it did not start"


def test_up_without_a_model_trains_in_the_background_and_down_stops_the_training(stack_env, tmp_path, redis_server):
    artifacts = tmp_path / "artifacts"
    # 200 epochs: long enough to be stopped mid-run.
    env = {**stack_env, "ARTIFACTS_DIR": str(artifacts), "REDIS_URL": redis_server.url,
           "EPOCHS": "200", "VAL_SIZE": "100", "BATCH_SIZE": "64", "NUM_THREADS": "1"}
    run_dir, api = Path(env["RUN_DIR"]), f"http://127.0.0.1:{env['INFERENCE_PORT']}"
    trainer_log = run_dir / "logs" / "trainer.log"
    try:
        up = stack("up", env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert str(trainer_log) in up.stdout
        started = pids(run_dir)
        assert set(started) == {"inference", "frontend", "trainer"}, "a Redis already answers at REDIS_URL"
        assert requests.get(f"{api}/metrics", timeout=5).json()["model"]["source"] == "default"

        def trained_an_epoch() -> bool:  # it found the data and finished an epoch
            assert alive(started["trainer"]), trainer_log.read_text()[-2000:]
            return "train loss" in trainer_log.read_text()

        wait_until(trained_an_epoch, "the trainer's first epoch")
    finally:
        down = stack("down", env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopping trainer" in down.stdout
    assert_all_gone(started)
    assert processes_with_env(f"RUN_DIR={run_dir}") == []
    # The trainer stopped cleanly (SIGTERM): its last completed epoch is kept for the next `up` to resume.
    assert (artifacts / "run" / "last.pt").is_file()
    assert alive(redis_server.process.pid), "down never touches what it did not start"
    pong = subprocess.run(["redis-cli", "-u", redis_server.url, "ping"], capture_output=True, text=True, timeout=5)
    assert pong.stdout.strip() == "PONG"


def test_up_that_cannot_start_everything_stops_what_it_started(stack_env, tiny_artifacts):
    env = {**stack_env, "ARTIFACTS_DIR": str(tiny_artifacts)}
    run_dir = Path(env["RUN_DIR"])
    with socket.socket() as taken:  # something else already listens on the page's port
        taken.bind(("127.0.0.1", int(env["FRONTEND_PORT"])))
        taken.listen()
        up = stack("up", env)
    assert up.returncode == 1
    assert f"port {env['FRONTEND_PORT']} is already in use: set FRONTEND_PORT" in up.stderr
    assert "stopping redis" in up.stderr and "stopping inference" in up.stderr
    assert not list(run_dir.glob("*.pid"))
    assert processes_with_env(f"RUN_DIR={run_dir}") == []
    # redis-server overwrites its environment with its process title: check its port instead.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])), timeout=2)
