"""The compose files, as the real docker-compose reads them: services, volumes, ports, health and the GPU overlay."""

import pytest

from services.trainer.config import TrainSettings
from tests.deploy.helpers import (
    BASE_FILE,
    GPU_FILE,
    OFFLINE_FILE,
    SCALE_FILE,
    SERVICES,
    SWARM_FILE,
    compose_config,
    compose_variables,
    env_example_variables,
    run_compose_config,
)
from tests.processes import REPO_ROOT

ENV_EXAMPLE = REPO_ROOT / ".env.example"


@pytest.fixture(scope="module")
def base() -> dict:
    return compose_config(BASE_FILE)["services"]


@pytest.fixture(scope="module")
def merged() -> dict:
    return compose_config(BASE_FILE, GPU_FILE)["services"]


def volume_mounts(service: dict) -> dict[str, tuple[str, str]]:
    """container path -> (volume name, mode) from docker-compose's normalised ``source:target:mode`` strings."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target, mode = entry.split(":") if entry.count(":") == 2 else (*entry.split(":"), "rw")
        mounts[target] = (source, mode)
    return mounts


def test_the_stack_has_redis_the_edge_and_the_three_services_built_from_their_dockerfiles(base):
    assert set(base) == {"redis", "trainer", "inference", "frontend", "edge"}
    assert base["redis"]["image"].startswith("redis:7")
    assert base["edge"]["image"] == "nginx:alpine" and "build" not in base["edge"], "the official image, as is"
    for name in SERVICES:
        build = base[name]["build"]
        assert build["context"] == str(REPO_ROOT), f"{name} must be built with the repository root as context"
        assert build["dockerfile"] == f"services/{name}/Dockerfile"
        assert base[name]["pull_policy"] == "build", "our image names must never be looked up in a registry"


def test_the_trainer_gets_cpu_only_torch_and_the_inference_service_no_torch_by_default(base):
    """PyTorch's CPU-only wheels for the trainer unless TORCH_INDEX_URL says otherwise (empty: pip's default); the
    CPU inference image has no torch at all, so it takes no torch index."""
    assert base["trainer"]["build"]["args"]["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    chosen = compose_config(BASE_FILE, env={"TORCH_INDEX_URL": "https://wheels.example/cpu"})["services"]
    assert chosen["trainer"]["build"]["args"]["TORCH_INDEX_URL"] == "https://wheels.example/cpu"
    assert base["inference"]["build"]["dockerfile"] == "services/inference/Dockerfile"
    for name in ("inference", "frontend"):
        assert "TORCH_INDEX_URL" not in (base[name]["build"].get("args") or {})


def test_python_services_run_hardened(base):
    """Read-only root file system with a small /tmp in memory, no privilege gain, no capabilities."""
    for name in ("trainer", "inference", "frontend", "edge"):
        service = base[name]
        assert service["read_only"] is True, name
        assert [entry.split(":")[0] for entry in service["tmpfs"]] == ["/tmp"], name
        assert service["security_opt"] == ["no-new-privileges:true"], name
        assert service["cap_drop"] == ["ALL"], name
        assert "cap_add" not in service and not service.get("privileged"), name


def test_named_volumes_trainer_writes_artifacts_and_inference_reads_them_only(base):
    trainer, inference = volume_mounts(base["trainer"]), volume_mounts(base["inference"])
    assert trainer["/app/artifacts"] == ("artifacts", "rw")
    assert inference["/app/artifacts"] == ("artifacts", "ro")
    # What inference serves, for the trainer's retention: written by inference, only read by the trainer.
    assert inference["/app/serving"] == ("serving", "rw") and trainer["/app/serving"] == ("serving", "ro")
    assert base["inference"]["environment"]["SERVING_DIR"] == base["trainer"]["environment"]["SERVING_DIR"] == \
        "/app/serving"
    # Each data volume has one writer: two containers never download into the same files.
    assert trainer["/app/data"][0] != inference["/app/data"][0]
    assert base["trainer"]["environment"]["DATA_DIR"] == "/app/data"
    assert base["inference"]["environment"]["ARTIFACTS_DIR"] == "/app/artifacts"
    assert base["inference"]["environment"]["DEFAULT_MODEL_DIR"] == "/app/models/default"
    declared = set(compose_config(BASE_FILE)["volumes"])
    used = {source for name in SERVICES for source, _ in volume_mounts(base[name]).values()}
    assert used == declared, "every named volume is declared and used"
    assert "volumes" not in base["redis"], "redis is a cache: nothing persisted"


def test_only_the_edge_publishes_ports_on_localhost_by_default(base):
    assert base["edge"]["ports"] == ["127.0.0.1:5000:5000/tcp", "127.0.0.1:8000:8000/tcp"]
    for name in ("redis", "trainer", "inference", "frontend"):
        assert "ports" not in base[name], f"{name} is reached through the edge only"


def test_ports_and_bind_address_come_from_the_environment():
    services = compose_config(BASE_FILE, env={"BIND_ADDRESS": "0.0.0.0", "FRONTEND_PORT": "8080",
                                              "INFERENCE_PORT": "9000"})["services"]
    assert services["edge"]["ports"] == ["0.0.0.0:8080:5000/tcp", "0.0.0.0:9000:8000/tcp"]


def test_servers_listen_on_all_container_interfaces_and_find_each_other_by_service_name(base):
    for name in ("inference", "frontend"):
        assert base[name]["environment"]["HOST"] == "0.0.0.0"
    assert base["inference"]["environment"]["PORT"] == "8000"
    assert base["frontend"]["environment"]["PORT"] == "5000"
    assert base["frontend"]["environment"]["INFERENCE_URL"] == "http://inference:8000"
    assert base["frontend"]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    for name in ("inference", "frontend"):  # the client address behind the edge (see the comment in the file)
        assert base[name]["environment"]["FORWARDED_ALLOW_IPS"] == "10.89.213.0/24", "the stack's network, not *"
    subnet = compose_config(BASE_FILE)["networks"]["default"]["ipam"]["config"]
    assert subnet == [{"subnet": "10.89.213.0/24"}], "a fixed range, so the setting can name it"
    other = compose_config(BASE_FILE, env={"STACK_SUBNET": "172.31.250.0/24"})
    assert other["networks"]["default"]["ipam"]["config"] == [{"subnet": "172.31.250.0/24"}]
    assert {other["services"][name]["environment"]["FORWARDED_ALLOW_IPS"] for name in ("inference", "frontend")} \
        == {"172.31.250.0/24"}


def test_security_settings_reach_the_services_and_the_edge(base):
    """API keys and the admin token to the API, the page's own key to the page, the limits to the edge: empty keys
    (open prediction endpoints, management disabled) and the services' own defaults unless .env says otherwise."""
    from services.frontend.app.config import Settings as PageSettings
    from services.inference.app.config import Settings as ApiSettings

    api, page, edge = (base[name]["environment"] for name in ("inference", "frontend", "edge"))
    assert api["API_KEYS"] == api["ADMIN_TOKEN"] == page["INFERENCE_API_KEY"] == ""
    defaults = ApiSettings()
    assert int(api["MIN_BODY_RATE"]) == defaults.min_body_rate and float(api["BODY_GRACE_S"]) == defaults.body_grace_s
    assert PageSettings().inference_api_key.get_secret_value() == ""
    assert edge == {"EDGE_RATE_LIMIT": "20r/s", "EDGE_RATE_BURST": "40", "EDGE_CONN_LIMIT": "20", "ADMIN_ALLOW": ""}
    chosen = compose_config(BASE_FILE, env={"API_KEYS": "a,b", "INFERENCE_API_KEY": "b", "EDGE_RATE_LIMIT": "5r/s"})
    assert chosen["services"]["inference"]["environment"]["API_KEYS"] == "a,b"
    assert chosen["services"]["frontend"]["environment"]["INFERENCE_API_KEY"] == "b"
    assert chosen["services"]["edge"]["environment"]["EDGE_RATE_LIMIT"] == "5r/s"


def test_healthchecks_and_start_order(base):
    assert base["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert base["inference"]["healthcheck"]["test"] == ["CMD", "python", "-m", "shared.healthcheck", "/ready"]
    assert base["frontend"]["healthcheck"]["test"] == ["CMD", "python", "-m", "shared.healthcheck", "/health"]
    assert base["edge"]["healthcheck"]["test"][:2] == ["CMD", "curl"]
    for name in ("redis", "inference", "frontend", "edge"):
        # Podman's Docker API splits CMD elements on spaces; Docker does not. Without spaces both run the same.
        assert not any(" " in element for element in base[name]["healthcheck"]["test"]), name
    assert base["frontend"]["depends_on"] == {"redis": {"condition": "service_healthy"},
                                              "inference": {"condition": "service_healthy"}}
    # The page and the API never wait for training; the edge starts with them and answers 502 until they answer.
    for name in ("inference", "frontend", "edge"):
        assert "trainer" not in base[name].get("depends_on", {})
    assert base["edge"]["depends_on"] == {"inference": {"condition": "service_started"},
                                          "frontend": {"condition": "service_started"}}


def test_trainer_is_a_one_shot_job_that_is_not_restarted_after_success(base):
    restart = base["trainer"].get("restart", "no")
    assert restart == "no" or restart.startswith("on-failure"), "`always`/`unless-stopped` would retrain forever"
    env = base["trainer"]["environment"]
    assert env["RETRAIN"] == "0" and env["DOWNLOAD"] == "true"
    assert compose_config(BASE_FILE, env={"RETRAIN": "1"})["services"]["trainer"]["environment"]["RETRAIN"] == "1"


def test_trainer_defaults_in_compose_are_the_trainers_own_defaults(base):
    """A default spelled differently in compose would silently make `docker compose up` train another recipe."""
    env, defaults = base["trainer"]["environment"], TrainSettings()
    for name in ("EPOCHS", "BATCH_SIZE", "LR", "SEED", "SPLIT_SEED", "TRAIN_LIMIT", "KEEP_MODELS", "PUBLISH_IF"):
        field = name.lower()
        assert type(getattr(defaults, field))(env[name]) == getattr(defaults, field), name


def test_management_is_off_unless_an_admin_token_is_set_and_no_secret_is_written_down(base):
    assert base["inference"]["environment"]["ADMIN_TOKEN"] == ""
    chosen = compose_config(BASE_FILE, env={"ADMIN_TOKEN": "from-the-environment"})["services"]
    assert chosen["inference"]["environment"]["ADMIN_TOKEN"] == "from-the-environment"
    assert "ADMIN_TOKEN" not in base["trainer"]["environment"] and "ADMIN_TOKEN" not in base["frontend"]["environment"]


def test_gpu_overlay_reserves_nvidia_gpus_and_builds_cuda_torch(merged, base):
    for name in ("trainer", "inference"):
        service = merged[name]
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"capabilities": ["gpu"], "count": "all", "driver": "nvidia"}]
        assert service["environment"]["DEVICE"] == "cuda"
        assert service["build"]["args"]["TORCH_INDEX_URL"] == ""  # pip's default index: a CUDA build on Linux
        assert service["image"].endswith(":gpu")
        assert service["read_only"] is True and service["environment"]["CUDA_CACHE_PATH"].startswith("/tmp/")
        # The overlay changes only that: volumes, ports and health stay as in the base file.
        assert sorted(service.get("volumes", [])) == sorted(base[name].get("volumes", []))
        assert service.get("ports") == base[name].get("ports")
        assert service.get("healthcheck") == base[name].get("healthcheck")
    # docker-compose v1 drops pull_policy when it merges files (Compose v2 keeps it): compare the rest.
    assert {k: v for k, v in merged["frontend"].items() if k != "pull_policy"} == \
        {k: v for k, v in base["frontend"].items() if k != "pull_policy"}
    assert base["trainer"]["environment"]["DEVICE"] == "cpu"
    # The inference service becomes the torch image; the trainer keeps its Dockerfile with the CUDA build.
    assert merged["inference"]["build"]["dockerfile"] == "services/inference/Dockerfile.torch"
    assert merged["trainer"]["build"]["dockerfile"] == base["trainer"]["build"]["dockerfile"]


def test_gpu_overlay_is_also_a_valid_compose_file_on_its_own():
    services = compose_config(GPU_FILE)["services"]
    assert set(services) == {"trainer", "inference"}
    chosen = compose_config(GPU_FILE, env={"TORCH_CUDA_INDEX_URL": "https://wheels.example/cu128"})["services"]
    assert chosen["trainer"]["build"]["args"]["TORCH_INDEX_URL"] == "https://wheels.example/cu128"


def test_offline_override_binds_one_data_folder_read_only_and_turns_downloading_off(base):
    merged = compose_config(BASE_FILE, OFFLINE_FILE, env={"FASHION_MNIST_DIR": "/srv/fashion"})["services"]
    for name in ("trainer", "inference"):
        assert volume_mounts(merged[name])["/app/data"] == ("/srv/fashion", "ro"), name
        assert merged[name]["environment"]["DOWNLOAD"] == "false"
        # Only the data changes: the artifacts volume, the rest of the environment, ports and health stay.
        assert volume_mounts(merged[name])["/app/artifacts"] == volume_mounts(base[name])["/app/artifacts"]
        assert {k: v for k, v in merged[name]["environment"].items() if k != "DOWNLOAD"} == \
            {k: v for k, v in base[name]["environment"].items() if k != "DOWNLOAD"}
        assert merged[name].get("ports") == base[name].get("ports")
        assert merged[name].get("healthcheck") == base[name].get("healthcheck")
    assert base["trainer"]["environment"]["DOWNLOAD"] == "true", "downloading stays the default"
    assert {k: v for k, v in merged["frontend"].items() if k != "pull_policy"} == \
        {k: v for k, v in base["frontend"].items() if k != "pull_policy"}


def test_offline_override_refuses_to_start_without_the_data_folder():
    result = run_compose_config(BASE_FILE, OFFLINE_FILE)
    assert result.returncode != 0
    assert "FASHION_MNIST_DIR" in result.stderr and "FashionMNIST/raw/" in result.stderr


def test_every_env_example_variable_is_used_by_a_compose_file_and_vice_versa():
    documented = set(env_example_variables(ENV_EXAMPLE))
    used = set().union(*(compose_variables(path) for path in (BASE_FILE, GPU_FILE, OFFLINE_FILE, SCALE_FILE,
                                                              SWARM_FILE)))
    assert documented - used == set(), "documented in .env.example but used by no compose file"
    assert used - documented == set(), "used by a compose file but not documented in .env.example"


def test_env_example_values_are_the_compose_defaults(base):
    """Copying .env.example to .env unchanged must give exactly the default configuration."""
    from_example = compose_config(BASE_FILE, GPU_FILE, env_file=ENV_EXAMPLE)["services"]
    assert from_example == compose_config(BASE_FILE, GPU_FILE)["services"]
    scaled = compose_config(BASE_FILE, SCALE_FILE, env_file=ENV_EXAMPLE)["services"]
    assert scaled == compose_config(BASE_FILE, SCALE_FILE)["services"]
    swarm = compose_config(BASE_FILE, SWARM_FILE, env_file=ENV_EXAMPLE)
    assert swarm == compose_config(BASE_FILE, SWARM_FILE)
