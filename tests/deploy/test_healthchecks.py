"""The compose health checks, run as the engine runs them: the test's argv, with the container's PORT, against a real
inference server that has no model yet (/ready 503, /health 200) and then gets one."""

import shutil
import subprocess
import sys

import pytest

from tests.deploy.helpers import BASE_FILE, compose_config
from tests.processes import REPO_ROOT, InferenceServer, free_port
from tests.waiting import wait_until


def health_command(service: str) -> list[str]:
    test = compose_config(BASE_FILE)["services"][service]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"], "an exec-form check run by the image's python"
    return [sys.executable, *test[2:]]


def run_check(service: str, port: int | str) -> subprocess.CompletedProcess:
    env = {"PORT": str(port), "PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run(health_command(service), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def server_without_model(tmp_path_factory, tiny_data_dir):
    workdir = tmp_path_factory.mktemp("healthcheck")
    artifacts = workdir / "artifacts"
    artifacts.mkdir()
    with InferenceServer(workdir, ARTIFACTS_DIR=artifacts, DATA_DIR=tiny_data_dir,
                         DEFAULT_MODEL_DIR=workdir / "no-model", THREADS="1", RELOAD_INTERVAL_S="0.2") as server:
        yield server, server.port, artifacts


def test_checks_follow_the_servers_answers(server_without_model, default_model_dir):
    _, port, artifacts = server_without_model
    not_ready = run_check("inference", port)
    assert not_ready.returncode == 1 and "/ready answered 503" in not_ready.stdout
    alive = run_check("frontend", port)  # /health answers 200 on both servers
    assert alive.returncode == 0 and "/health answered 200" in alive.stdout

    shutil.copytree(default_model_dir, artifacts, dirs_exist_ok=True)  # a model is published: ready
    ready = wait_until(lambda: (check := run_check("inference", port)).returncode == 0 and check, "the check to pass")
    assert "/ready answered 200" in ready.stdout


def test_check_fails_when_nothing_answers():
    result = run_check("inference", free_port())
    assert result.returncode == 1 and "did not answer" in result.stdout


def test_check_without_a_port_is_an_unhealthy_usage_error():
    result = run_check("inference", "")
    assert result.returncode == 1 and "usage" in result.stderr
