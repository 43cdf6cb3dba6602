"""The client's address behind the edge: X-Forwarded-For counts only when a trusted peer (the edge) sent it."""

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from services.frontend.app.proxy import TrustedProxyFix


def echo_client(environ, start_response):
    return Response(f"{environ['REMOTE_ADDR']} {environ['wsgi.url_scheme']}")(environ, start_response)


def seen(trusted: str, peer: str, **headers: str) -> str:
    client = Client(TrustedProxyFix(echo_client, trusted))
    return client.get("/", environ_base={"REMOTE_ADDR": peer}, headers=headers).get_data(as_text=True)


@pytest.mark.parametrize("trusted,peer,expected", [
    ("127.0.0.1,::1", "127.0.0.1", "203.0.113.7 https"),  # the default: a proxy on this machine
    ("10.89.0.0/16", "10.89.0.5", "203.0.113.7 https"),  # a network, as gunicorn and uvicorn take it
    ("*", "172.18.0.4", "203.0.113.7 https"),  # compose: only the edge can reach the page
    ("127.0.0.1,::1", "192.0.2.50", "192.0.2.50 http"),  # anyone else keeps its own address, whatever it claims
    ("10.89.0.0/16", "not-an-address", "not-an-address http"),
])
def test_forwarded_headers_count_only_from_trusted_peers(trusted, peer, expected):
    assert seen(trusted, peer, **{"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}) == expected


def test_a_trusted_peer_without_forwarded_headers_is_the_client():
    assert seen("*", "10.89.0.5") == "10.89.0.5 http"
