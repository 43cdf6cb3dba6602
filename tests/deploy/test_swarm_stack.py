"""The Swarm stack file (scripts/swarm_stack.py) as it is written from the compose files by the real docker-compose:
in step with docker-compose.yml (every service, with the same image, command, health check, settings and mounts),
made of what `docker stack deploy` takes, with the secrets, volume options and GPU placement as set. The stack on a
real swarm (rolling update, a killed task, a rollback, `docker stack rm`) is `make swarm-smoke`."""

import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from services.frontend.app.config import Settings as FrontendSettings
from services.inference.app.config import Settings as InferenceSettings
from shared.secret_files import is_secret
from tests.deploy.helpers import BASE_FILE, DOCKER_COMPOSE, GPU_FILE, SWARM_FILE, compose_config
from tests.processes import REPO_ROOT

spec = importlib.util.spec_from_file_location("swarm_stack", REPO_ROOT / "scripts" / "swarm_stack.py")
swarm_stack = importlib.util.module_from_spec(spec)
spec.loader.exec_module(swarm_stack)

SECRET_NAMES = ("admin_token", "api_keys", "secret_key", "inference_api_key")


def write(tmp_path: Path, secrets: dict[str, str] | None = None, gpu: bool = False, registry: str = "",
          **env: str) -> tuple[dict, str]:
    """The stack and its header, written in an environment of only PATH, HOME and ``env`` (no local .env)."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    for name, value in (secrets or {}).items():
        (secrets_dir / name).write_text(value)
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    files = [BASE_FILE, SWARM_FILE] + ([GPU_FILE] if gpu else [])
    out = tmp_path / "stack.yml"
    stack = swarm_stack.write_stack(out, files, [DOCKER_COMPOSE], secrets_dir, empty_env, registry,
                                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env})
    text = out.read_text()
    assert yaml.safe_load(text) == stack
    return stack, text


@pytest.fixture(scope="module")
def written() -> tuple[dict, str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield write(Path(tmp), secrets={name: f"{name}-value\n" for name in SECRET_NAMES})


@pytest.fixture(scope="module")
def stack(written) -> dict:
    return written[0]


@pytest.fixture(scope="module")
def base() -> dict:
    return compose_config(BASE_FILE)["services"]


def mounts(service: dict) -> dict[str, dict]:
    return {mount["target"]: mount for mount in service.get("volumes", [])}


def test_every_compose_service_runs_with_the_same_image_command_health_check_and_user(stack, base):
    services = stack["services"]
    assert set(services) == set(base)
    for name, compose_service in base.items():
        for key in ("image", "command", "user", "read_only", "cap_drop"):
            assert services[name].get(key) == compose_service.get(key), (name, key)
        if "healthcheck" in compose_service:
            assert services[name]["healthcheck"]["test"] == compose_service["healthcheck"]["test"], name


def test_the_settings_are_the_compose_ones_and_secrets_never_plain(stack, base):
    secret_variables = {name.upper() for name in SECRET_NAMES}
    for name, compose_service in base.items():
        environment = stack["services"][name].get("environment", {})
        expected = {key: value for key, value in (compose_service.get("environment") or {}).items()
                    if key not in secret_variables}
        if name == "frontend":
            expected["INFERENCE_URL"] = "http://edge:8080"  # the edge's internal port, as with the scale overlay
        assert {key: environment.get(key) for key in expected} == expected, name
        assert not secret_variables & set(environment), f"{name}: a secret as a plain variable"


def test_the_mounts_are_the_compose_ones_and_the_edge_config_comes_as_swarm_configs(stack, base):
    for name in ("trainer", "inference"):
        compose_targets = {entry.split(":")[1] for entry in base[name]["volumes"]}
        compose_targets |= {entry.split(":")[0] for entry in base[name].get("tmpfs") or []}  # a writable /tmp
        assert set(mounts(stack["services"][name])) == compose_targets, name
    assert mounts(stack["services"]["inference"])["/app/artifacts"]["read_only"] is True
    assert mounts(stack["services"]["trainer"])["/app/serving"]["read_only"] is True
    edge = stack["services"]["edge"]
    assert mounts(edge) == {"/tmp": {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 128 * 1024 ** 2}}}
    nginx_dir = REPO_ROOT / "deploy" / "nginx"
    shipped = {f"/etc/nginx/edge/{path.relative_to(nginx_dir).as_posix()}": path
               for path in nginx_dir.rglob("*") if path.is_file()}
    configs = {entry["target"]: stack["configs"][entry["source"]] for entry in edge["configs"]}
    assert set(configs) == set(shipped), "every file of deploy/nginx/ reaches every edge"
    for target, path in shipped.items():
        assert configs[target] == {"file": str(path)}
        source = next(entry["source"] for entry in edge["configs"] if entry["target"] == target)
        assert source.endswith(swarm_stack.short_hash(path.read_bytes())), "named by content: a change rolls out"


def test_swarm_gets_nothing_it_refuses_and_the_header_says_what_was_left_out(written):
    stack, text = written
    for name, service in stack["services"].items():
        assert set(service) <= set(swarm_stack.SWARM_KEYS), name
    assert stack["version"] == "3.9" and set(stack) <= {"version", "services", "networks", "volumes", "configs",
                                                        "secrets"}
    assert "#   frontend: build, depends_on, restart" in text and "#   edge: depends_on, restart" in text
    assert "edge: published on every address of its node" in text


def test_docker_stack_deploy_takes_the_file(written, tmp_path):
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "stack", "--help"], capture_output=True).returncode != 0:
        pytest.skip("no docker CLI with `docker stack` here")
    path = tmp_path / "stack.yml"
    path.write_text(written[1])
    result = subprocess.run([docker, "stack", "config", "-c", str(path)], capture_output=True, text=True,
                            env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    read = yaml.safe_load(result.stdout)["services"]  # as Docker's own loader understood it
    assert read["trainer"]["deploy"]["restart_policy"]["condition"] == "on-failure"
    assert {port["mode"] for port in read["edge"]["ports"]} == {"host"}
    assert read["inference"]["deploy"]["update_config"]["failure_action"] == "rollback"


def test_every_service_is_found_by_dns_and_the_edge_publishes_on_its_node(stack):
    """No IPVS on these machines (nor on many): no virtual IPs, no routing mesh."""
    for name, service in stack["services"].items():
        if name != "trainer":
            assert service["deploy"]["endpoint_mode"] == "dnsrr", name
    edge = stack["services"]["edge"]
    assert edge["deploy"]["mode"] == "global", "one edge per node, each on its node's ports"
    assert edge["ports"] == [{"target": 5000, "protocol": "tcp", "mode": "host", "published": 5000},
                             {"target": 8000, "protocol": "tcp", "mode": "host", "published": 8000}]
    assert edge["deploy"]["update_config"]["order"] == "stop-first", "two edges cannot share a node's ports"
    # An overlay on the range FORWARDED_ALLOW_IPS names, so the services believe the edge's X-Forwarded-For.
    assert stack["networks"] == {"default": {"driver": "overlay", "ipam": {"config": [{"subnet": "10.89.213.0/24"}]}}}
    for name in ("redis", "trainer", "inference", "frontend"):
        assert "ports" not in stack["services"][name], f"{name} is reached through the edge only"


def test_ports_and_replicas_come_from_the_environment(tmp_path):
    stack, _ = write(tmp_path, FRONTEND_PORT="8080", INFERENCE_PORT="9000", INFERENCE_REPLICAS="6")
    assert [port["published"] for port in stack["services"]["edge"]["ports"]] == [8080, 9000]
    assert stack["services"]["inference"]["deploy"]["replicas"] == 6


def test_rolling_updates_start_the_new_task_first_and_roll_back_by_themselves(stack):
    for name in ("inference", "frontend"):
        deploy = stack["services"][name]["deploy"]
        assert deploy["update_config"]["order"] == "start-first" and deploy["update_config"]["parallelism"] == 1
        assert deploy["update_config"]["failure_action"] == "rollback", name
        assert deploy["update_config"]["monitor"] == "20s"
        assert deploy["rollback_config"]["order"] == "start-first", name
        assert deploy["restart_policy"]["condition"] == "any", name
        assert {"limits", "reservations"} <= set(deploy["resources"]), name
        assert "healthcheck" in stack["services"][name], "the health check gates each step"
    inference = stack["services"]["inference"]
    # Swarm drops a task from DNS 2 s before SIGTERM; the edge caches names 5 s: the API serves 5 s more.
    assert inference["environment"]["SHUTDOWN_DELAY_S"] == "5" and inference["stop_grace_period"] == "30s"
    nginx_conf = (REPO_ROOT / "deploy" / "nginx" / "start.sh").read_text()
    assert "valid=5s" in nginx_conf


def test_the_trainer_is_one_task_retried_after_a_crash_only(stack):
    deploy = stack["services"]["trainer"]["deploy"]
    assert deploy["replicas"] == 1 and "mode" not in deploy, "not a replicated-job: moby/moby#44312 on Engine < 24"
    assert deploy["restart_policy"] == {"condition": "on-failure", "delay": "10s", "max_attempts": 3}


def test_each_secret_file_becomes_a_docker_secret_for_the_app_user_and_an_x_file_setting(stack):
    for service, names in swarm_stack.SECRETS.items():
        attached = {entry["target"]: entry for entry in stack["services"][service]["secrets"]}
        assert set(attached) == set(names), service
        for name in names:
            entry = attached[name]
            assert (entry["uid"], entry["gid"], entry["mode"]) == ("10001", "10001", 0o400)
            assert stack["services"][service]["environment"][f"{name.upper()}_FILE"] == f"/run/secrets/{name}"
            content = f"{name}-value\n".encode()
            assert entry["source"] == f"{name}-{swarm_stack.short_hash(content)}"
            assert Path(stack["secrets"][entry["source"]]["file"]).read_text() == f"{name}-value\n"
    for service in ("redis", "trainer", "edge"):
        assert "secrets" not in stack["services"][service]


def test_without_secret_files_there_are_no_secrets_and_a_plain_value_is_not_passed_on(tmp_path):
    stack, text = write(tmp_path, secrets={"api_keys": "\n"}, SECRET_KEY="from-the-shell")
    assert "secrets" not in stack and "SECRET_KEY" not in stack["services"]["frontend"]["environment"]
    assert "API_KEYS_FILE" not in stack["services"]["inference"].get("environment", {})
    assert "SECRET_KEY from the environment is not passed to the stack" in text
    assert "api_keys is empty: API_KEYS stays unset" in text


def test_the_secret_table_names_every_secret_setting_of_the_services():
    """A new SecretStr setting (say the page's INFERENCE_API_KEY) must be added to swarm_stack.SECRETS."""
    for service, settings_cls in (("inference", InferenceSettings), ("frontend", FrontendSettings)):
        fields = {name for name, field in settings_cls.model_fields.items() if is_secret(field)}
        assert set(swarm_stack.SECRETS[service]) == fields, service


def test_models_are_node_local_volumes_unless_shared_storage_is_set(stack, tmp_path):
    assert stack["volumes"] == {"artifacts": {}, "inference-data": {}, "serving": {}, "train-data": {}}
    nfs = {"ARTIFACTS_VOLUME_TYPE": "nfs", "ARTIFACTS_VOLUME_OPTIONS": "addr=10.0.0.5,rw,nfsvers=4.1",
           "ARTIFACTS_VOLUME_DEVICE": ":/export/fashion/artifacts", "SERVING_VOLUME_TYPE": "nfs",
           "SERVING_VOLUME_OPTIONS": "addr=10.0.0.5,rw,nfsvers=4.1",
           "SERVING_VOLUME_DEVICE": ":/export/fashion/serving"}
    shared, _ = write(tmp_path, **nfs)
    assert shared["volumes"]["artifacts"] == {"driver_opts": {"type": "nfs", "o": "addr=10.0.0.5,rw,nfsvers=4.1",
                                                              "device": ":/export/fashion/artifacts"}}
    assert shared["volumes"]["serving"]["driver_opts"]["device"] == ":/export/fashion/serving"
    assert shared["volumes"]["train-data"] == {}, "the data sets stay on each node"
    with pytest.raises(swarm_stack.StackError, match="needs at least a type and a device"):
        write(tmp_path, ARTIFACTS_VOLUME_TYPE="nfs")


def test_gpu_tasks_reserve_a_gpu_as_a_generic_resource(tmp_path):
    stack, text = write(tmp_path, gpu=True)
    for name in ("trainer", "inference"):
        service = stack["services"][name]
        assert service["image"] == f"fashion-mnist-{name}:gpu" and service["environment"]["DEVICE"] == "cuda"
        assert service["deploy"]["resources"]["reservations"]["generic_resources"] == [
            {"discrete_resource_spec": {"kind": "NVIDIA-GPU", "value": 1}}]
        assert "devices" not in service["deploy"]["resources"]["reservations"]
    assert "generic_resources" not in str(stack["services"]["frontend"])
    assert "inference: one NVIDIA-GPU generic resource per task" in text


def test_a_registry_names_the_project_images_only(tmp_path):
    stack, _ = write(tmp_path, registry="registry.example.com:5000/", IMAGE_TAG="1.4")
    assert stack["services"]["inference"]["image"] == "registry.example.com:5000/fashion-mnist-inference:1.4"
    assert stack["services"]["redis"]["image"] == "redis:7-alpine"
