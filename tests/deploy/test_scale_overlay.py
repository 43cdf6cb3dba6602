"""docker-compose.scale.yml as docker-compose reads it: N inference replicas behind the edge, the page calling the
API through the edge, and nothing else changed. The behaviour (requests spread, swaps and a killed replica under
load) is tested on the container engine by `make scale-smoke` (scripts/scale_smoke.sh)."""

import re

import pytest

from tests.deploy.helpers import BASE_FILE, SCALE_FILE, compose_config
from tests.processes import REPO_ROOT


@pytest.fixture(scope="module")
def base() -> dict:
    return compose_config(BASE_FILE)["services"]


@pytest.fixture(scope="module")
def scaled() -> dict:
    return compose_config(BASE_FILE, SCALE_FILE)["services"]


def test_inference_can_run_as_several_containers(scaled):
    inference = scaled["inference"]
    assert "container_name" not in inference and "ports" not in inference, "a fixed name or host port allows one"
    assert inference["deploy"]["replicas"] == 3
    assert inference["deploy"]["update_config"] == {"parallelism": 1, "order": "start-first"}
    assert inference["deploy"]["endpoint_mode"] == "dnsrr", "Swarm: the name resolves to each replica, as here"
    chosen = compose_config(BASE_FILE, SCALE_FILE, env={"INFERENCE_REPLICAS": "5"})["services"]
    assert chosen["inference"]["deploy"]["replicas"] == 5
    assert "healthcheck" in inference, "the edge and the page rely on /ready per replica"


def test_the_page_reaches_the_api_through_the_edge_and_the_edge_finds_the_replicas_by_service_name(scaled, base):
    assert base["frontend"]["environment"]["INFERENCE_URL"] == "http://inference:8000"
    assert scaled["frontend"]["environment"]["INFERENCE_URL"] == "http://edge:8080", "the API's unlimited port"
    assert "edge" not in scaled["frontend"].get("depends_on", {}), "the edge depends on the page: no cycle"
    conf = (REPO_ROOT / "deploy" / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    assert re.search(r"set \$inference http://inference:8000;", conf), "the service name, resolved while running"
    api_server = conf[conf.index("listen 8000;"):conf.index("listen 5000;")]
    assert "listen 8080;" in api_server and re.search(r'map \$server_port \$limit_key \{\s*8080 "";', conf), \
        "port 8080 is the API without per-client limits (an empty key)"
    assert re.search(r"resolver \S+ valid=5s", (REPO_ROOT / "deploy" / "nginx" / "start.sh").read_text())


def test_the_overlay_changes_nothing_else(scaled, base):
    assert set(scaled) == set(base)
    for name in base:
        before, after = dict(base[name]), dict(scaled[name])
        after.pop("deploy", None) if name == "inference" else None
        # docker-compose v1 drops pull_policy (a key it does not know) when it merges two files; it ignores the key
        # anyway, and Compose v2 keeps it.
        # It also reorders volume lists while merging: compare them as sets.
        for service in (before, after):
            service.pop("pull_policy", None)
            service["volumes"] = set(service.get("volumes", []))
        if name == "frontend":
            before["environment"] = {**before["environment"], "INFERENCE_URL": "http://edge:8080"}
        assert after == before, name
