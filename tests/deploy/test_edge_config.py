"""The edge (deploy/nginx/, the compose `edge` service) agrees with the services behind it: its body limits are
theirs, its refusals are in their error shape, it runs unprivileged, and it finds its DNS server on either engine.
Its behaviour is tested in a local nginx in front of the real services (tests/security/test_edge_limits.py, make test)
and against the running stack (tests/reliability/test_edge.py, run by make compose-smoke)."""

import json
import re
import subprocess

import pytest

from services.frontend.app.config import Settings as PageSettings
from services.frontend.app.uploads import too_large
from services.inference.app.config import Settings as ApiSettings
from tests.deploy.helpers import BASE_FILE, compose_config
from tests.processes import REPO_ROOT

EDGE = REPO_ROOT / "deploy" / "nginx"
CONF = (EDGE / "nginx.conf").read_text(encoding="utf-8")


def server_block(port: int) -> str:
    """The text of the `server { listen PORT; ... }` block (up to the next server block)."""
    start = CONF.index(f"listen {port};")
    end = CONF.find("server {", start)
    return CONF[start:end if end > 0 else None]


def directive(text: str, name: str) -> str:
    match = re.search(rf"^\s*{name}\s+([^;]+);", text, re.MULTILINE)
    assert match, f"no {name} in the edge's configuration"
    return match.group(1).strip()


def size_in_bytes(value: str) -> int:
    units = {"k": 1024, "m": 1024 * 1024}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].lower() in units else int(value)


def test_body_limits_are_the_services_own():
    assert size_in_bytes(directive(server_block(8000), "client_max_body_size")) == ApiSettings().max_body_bytes
    page = PageSettings()
    assert size_in_bytes(directive(server_block(5000), "client_max_body_size")) == page.max_upload_bytes + 64 * 1024
    assert directive(server_block(8000), "set") == "$inference http://inference:8000"
    assert directive(server_block(5000), "set") == "$frontend http://frontend:5000"


def test_refusals_are_json_in_the_api_error_shape_and_say_what_the_services_say():
    errors = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in (EDGE / "errors").glob("*.json")}
    for name, body in errors.items():
        assert set(body) == {"error", "detail"} and all(isinstance(v, str) and v for v in body.values()), name
    referenced = set(re.findall(r"/errors/([\w-]+)\.json", CONF + (EDGE / "json-errors.conf").read_text()))
    assert referenced == set(errors), "every page is used, every used page exists"
    for status in ("400", "404", "408", "414", "429", "431", "500", "502", "503", "504"):
        assert status in errors
    assert str(ApiSettings().max_body_bytes) in errors["413-api"]["detail"]
    page_refusal = too_large(PageSettings().max_upload_bytes)  # what the page answers at its default limit
    assert errors["413-page"] == {"error": page_refusal.error, "detail": page_refusal.detail}


def test_slow_clients_and_big_headers_are_bounded_and_bodies_are_buffered_before_the_services_see_them():
    for name in ("client_header_timeout", "client_body_timeout", "send_timeout", "keepalive_timeout"):
        assert 1 <= int(directive(CONF, name).rstrip("s")) <= 30, name
    assert directive(CONF, "large_client_header_buffers") == "4 8k"
    assert directive(CONF, "proxy_request_buffering") == "on" and directive(CONF, "proxy_buffering") == "on"
    # ... except the API's: passed on as they arrive, so that its MIN_BODY_RATE deadline cuts a trickle
    assert directive(server_block(8000), "proxy_request_buffering") == "off"
    assert "proxy_request_buffering" not in server_block(5000), "the page's bodies are buffered: gunicorn's threads"
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in CONF, "replaced, never appended to"


def test_a_request_moves_to_another_replica_only_when_the_first_failed_before_answering():
    """`error timeout` without `non_idempotent`: nginx retries a POST only when it was not sent (connection refused or
    not made); without http_5xx a replica's own error answer is passed on, never retried elsewhere."""
    retry_on = directive(CONF, "proxy_next_upstream").split()
    assert retry_on == ["error", "timeout"], "a POST is never sent twice; a 5xx answer is the replica's own"
    assert int(directive(CONF, "proxy_next_upstream_tries")) >= 2
    assert 1 <= int(directive(CONF, "proxy_next_upstream_timeout").rstrip("s")) <= int(
        directive(CONF, "proxy_read_timeout").rstrip("s"))
    assert int(directive(CONF, "proxy_connect_timeout").rstrip("s")) <= 3, "a dead replica costs at most this"
    assert "$upstream_addr" in directive(CONF, "log_format"), "the log names the replica(s) tried"


def test_the_edge_runs_unprivileged_read_only_with_its_configuration_bound_read_only():
    edge = compose_config(BASE_FILE)["services"]["edge"]
    assert edge["user"] == "101:101" and edge["read_only"] is True and edge["tmpfs"] == ["/tmp:size=128m"]
    assert edge["cap_drop"] == ["ALL"]
    assert edge["volumes"] == [f"{EDGE}:/etc/nginx/edge:ro"]
    assert edge["command"] == ["sh", "/etc/nginx/edge/start.sh"]
    assert "/tmp/nginx/" in directive(CONF, "pid") and directive(CONF, "error_log") == "stderr warn"


@pytest.mark.parametrize("resolv_conf,resolver", [
    ("nameserver 127.0.0.11\noptions ndots:0\n", "127.0.0.11"),  # Docker's embedded DNS
    ("search dns.podman\nnameserver 10.89.0.1\nnameserver 10.255.255.53\n", "10.89.0.1"),  # Podman: the gateway
    ("nameserver fd00::1\n", "[fd00::1]"),
])
def test_start_script_points_nginx_at_the_containers_dns_server(tmp_path, resolv_conf, resolver):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "nginx").write_text('#!/bin/sh\necho "nginx $*"\n')
    (fake_bin / "nginx").chmod(0o755)
    (tmp_path / "resolv.conf").write_text(resolv_conf)
    result = subprocess.run(["sh", str(EDGE / "start.sh")], capture_output=True, text=True, timeout=10, env={
        "PATH": f"{fake_bin}:/usr/bin:/bin", "EDGE_RESOLV_CONF": str(tmp_path / "resolv.conf"),
        "EDGE_RUN_DIR": str(tmp_path / "run")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "resolver.conf").read_text() == f"resolver {resolver} valid=5s ipv6=off;\n"
    assert result.stdout.strip() == "nginx -e stderr -c /etc/nginx/edge/nginx.conf -g daemon off;"


def run_start_script(tmp_path, **env: str) -> subprocess.CompletedProcess:
    """start.sh with a stand-in nginx that prints its arguments, writing into tmp_path/run."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    (fake_bin / "nginx").write_text('#!/bin/sh\necho "nginx $*"\n')
    (fake_bin / "nginx").chmod(0o755)
    (tmp_path / "resolv.conf").write_text("nameserver 127.0.0.11\n")
    return subprocess.run(["sh", str(EDGE / "start.sh")], capture_output=True, text=True, timeout=10, env={
        "PATH": f"{fake_bin}:/usr/bin:/bin", "EDGE_RESOLV_CONF": str(tmp_path / "resolv.conf"),
        "EDGE_RUN_DIR": str(tmp_path / "run"), **env})


def test_start_script_writes_the_per_client_limits_with_compose_s_defaults(tmp_path):
    defaults = compose_config(BASE_FILE)["services"]["edge"]["environment"]
    assert run_start_script(tmp_path).returncode == 0
    unset = ((tmp_path / "run" / "limit-zones.conf").read_text(), (tmp_path / "run" / "limits.conf").read_text())
    assert run_start_script(tmp_path, **defaults).returncode == 0
    zones, limits = (tmp_path / "run" / "limit-zones.conf").read_text(), (tmp_path / "run" / "limits.conf").read_text()
    assert (zones, limits) == unset, "start.sh's own defaults are compose's"
    assert zones == ("limit_req_zone $limit_key zone=requests:10m rate=20r/s;\n"
                     "limit_conn_zone $limit_key zone=connections:10m;\n"
                     "map $limit_key $rate_retry_after { default 1; }\n")
    assert limits == "limit_req zone=requests burst=40 nodelay;\nlimit_conn connections 20;\n"
    assert run_start_script(tmp_path, EDGE_RATE_LIMIT="7r/m", EDGE_RATE_BURST="0", EDGE_CONN_LIMIT="3").returncode == 0
    assert "rate=7r/m;" in (tmp_path / "run" / "limit-zones.conf").read_text()
    assert "{ default 9; }" in (tmp_path / "run" / "limit-zones.conf").read_text(), "60 / 7, rounded up"
    assert (tmp_path / "run" / "limits.conf").read_text() == ("limit_req zone=requests burst=0 nodelay;\n"
                                                               "limit_conn connections 3;\n")
    for name in ("limit-zones.conf", "limits.conf"):
        assert f"include /tmp/nginx/{name};" in CONF
    for port in (8000, 5000):
        assert "include /tmp/nginx/limits.conf;" in server_block(port), "both public servers are limited"
    assert "limits.conf" not in CONF[CONF.index("listen 127.0.0.1:8079;"):], "the edge's own /health is not"


@pytest.mark.parametrize("name,value", [("EDGE_RATE_LIMIT", "20"), ("EDGE_RATE_LIMIT", "20r/h"),
                                        ("EDGE_RATE_LIMIT", "1r/s; evil"), ("EDGE_RATE_BURST", "x"),
                                        ("EDGE_CONN_LIMIT", "0"), ("EDGE_CONN_LIMIT", "5\n6"),
                                        ("EDGE_RATE_LIMIT", "1r/s\ninclude /etc/passwd"), ("EDGE_RATE_BURST", "+3")])
def test_start_script_refuses_a_limit_nginx_could_not_read(tmp_path, name, value):
    result = run_start_script(tmp_path, **{name: value})
    assert result.returncode == 1 and f"edge: {name}=" in result.stderr and "nginx" not in result.stdout


def test_start_script_refuses_to_start_without_a_dns_server(tmp_path):
    (tmp_path / "resolv.conf").write_text("# nothing\n")
    result = subprocess.run(["sh", str(EDGE / "start.sh")], capture_output=True, text=True, timeout=10, env={
        "PATH": "/usr/bin:/bin", "EDGE_RESOLV_CONF": str(tmp_path / "resolv.conf"),
        "EDGE_RUN_DIR": str(tmp_path / "run")})
    assert result.returncode == 1 and "no nameserver" in result.stderr
