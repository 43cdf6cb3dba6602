"""The client's address behind the edge: X-Forwarded-For is believed only when the edge itself sent it.

nginx replaces whatever a client put in X-Forwarded-For with the address it saw, and the page is published only
through nginx. Werkzeug's ``ProxyFix`` then moves that address into ``REMOTE_ADDR`` (what gunicorn's access log and
the app see), but it trusts every sender; so it is applied only to requests whose peer is in FORWARDED_ALLOW_IPS,
the same setting (and environment variable) gunicorn uses for the scheme headers. Anyone else, e.g. a local client
of ``make up`` with no edge in front, keeps its own address whatever headers it sends.
"""

import ipaddress
from collections.abc import Callable, Iterable

from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[bool, list[Network]]:
    """'127.0.0.1,::1,10.0.0.0/8' -> (trust everyone?, networks); ``*`` trusts every peer, as in gunicorn."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    return "*" in items, [ipaddress.ip_network(item, strict=False) for item in items if item != "*"]


class TrustedProxyFix:
    """WSGI middleware: ``ProxyFix`` (one proxy: X-Forwarded-For, X-Forwarded-Proto) for trusted peers only."""

    def __init__(self, app: Callable, forwarded_allow_ips: str) -> None:
        self.app, self.proxied = app, ProxyFix(app, x_for=1, x_proto=1, x_host=0, x_port=0, x_prefix=0)
        self.trust_all, self.networks = parse_networks(forwarded_allow_ips)

    def trusted(self, address: str | None) -> bool:
        if self.trust_all:
            return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:  # a Unix socket, or no peer address at all
            return False
        return any(ip in network for network in self.networks)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self.trusted(environ.get("REMOTE_ADDR")):
            return self.proxied(environ, start_response)
        return self.app(environ, start_response)
