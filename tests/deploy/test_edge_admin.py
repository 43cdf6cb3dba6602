"""The edge passes management requests (pinning models) only from ADMIN_ALLOW: start.sh turns the setting into
nginx's allow/deny lines, nginx.conf applies them to every method but GET under /models/, and compose hands the
setting to the edge. make compose-smoke checks the behaviour through the running edge (refused, then allowed)."""

import re
import subprocess

import pytest

from tests.deploy.helpers import BASE_FILE, compose_config
from tests.deploy.test_edge_config import CONF, EDGE, server_block

DEFAULT_ROUTE = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
                 "eth0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"  # default via 172.17.0.1
                 "eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n")


def start(tmp_path, admin_allow: str | None, route: str = DEFAULT_ROUTE) -> subprocess.CompletedProcess:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    (fake_bin / "nginx").write_text('#!/bin/sh\necho "nginx $*"\n')
    (fake_bin / "nginx").chmod(0o755)
    (tmp_path / "resolv.conf").write_text("nameserver 127.0.0.11\n")
    (tmp_path / "route").write_text(route)
    (tmp_path / "decoy").write_text("a file a glob would find")
    env = {"PATH": f"{fake_bin}:/usr/bin:/bin", "EDGE_RESOLV_CONF": str(tmp_path / "resolv.conf"),
           "EDGE_ROUTE_FILE": str(tmp_path / "route"), "EDGE_RUN_DIR": str(tmp_path / "run")}
    if admin_allow is not None:
        env["ADMIN_ALLOW"] = admin_allow
    return subprocess.run(["sh", str(EDGE / "start.sh")], capture_output=True, text=True, timeout=10, env=env,
                          cwd=tmp_path)


@pytest.mark.parametrize("admin_allow,lines", [
    (None, ["deny all;"]),  # unset: management passes from nowhere
    ("", ["deny all;"]),
    ("127.0.0.1", ["allow 127.0.0.1;", "deny all;"]),
    ("10.0.0.0/8, 172.16.0.0/12 ::1 fd00::/8", ["allow 10.0.0.0/8;", "allow 172.16.0.0/12;", "allow ::1;",
                                                "allow fd00::/8;", "deny all;"]),
    ("gateway", ["allow 172.17.0.1;", "deny all;"]),  # this machine, through the engine's port mapping
])
def test_admin_allow_becomes_allow_lines_and_everything_else_is_denied(tmp_path, admin_allow, lines):
    result = start(tmp_path, admin_allow)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "admin-allow.conf").read_text().splitlines() == lines
    assert result.stdout.strip() == "nginx -e stderr -c /etc/nginx/edge/nginx.conf -g daemon off;"


@pytest.mark.parametrize("admin_allow", ["*", "all", "1.2.3.4:80", "10.0.0.0/8/8", "/8", "host;deny", "a b$c"])
def test_anything_but_addresses_and_networks_stops_the_edge_with_a_clear_message(tmp_path, admin_allow):
    result = start(tmp_path, admin_allow)
    assert result.returncode == 1 and "ADMIN_ALLOW" in result.stderr and "not an address" in result.stderr
    assert not (tmp_path / "run" / "admin-allow.conf").exists(), "nginx never starts with half a list"


def test_gateway_without_a_default_route_stops_the_edge(tmp_path):
    result = start(tmp_path, "gateway", route=DEFAULT_ROUTE.splitlines(keepends=True)[0])
    assert result.returncode == 1 and "no default route" in result.stderr


def test_only_management_under_models_is_limited_and_refusals_are_json():
    api = server_block(8000)
    location = re.search(r"location /models/ \{(.*?)\n        \}", api, re.S)
    assert location, "a location for /models/ in the API's server"
    body = location.group(1)
    assert re.search(r"limit_except GET \{\s*include /tmp/nginx/admin-allow\.conf;\s*\}", body), \
        "every method but GET (and HEAD) passes only from ADMIN_ALLOW"
    assert "proxy_pass $inference;" in body
    assert re.search(r"location = /models \{\s*proxy_pass \$inference;\s*\}", api), "the list: no redirect to /models/"
    assert "error_page 403 /errors/403-admin.json;" in api
    assert "admin-allow" not in server_block(5000) and "403" not in server_block(5000), "the page has no management"
    assert CONF.count("limit_except") == 1


def test_compose_hands_admin_allow_to_the_edge_and_lets_nobody_by_default():
    assert compose_config(BASE_FILE)["services"]["edge"]["environment"]["ADMIN_ALLOW"] == ""
    chosen = compose_config(BASE_FILE, env={"ADMIN_ALLOW": "gateway"})["services"]["edge"]["environment"]
    assert chosen["ADMIN_ALLOW"] == "gateway"
