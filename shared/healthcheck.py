"""``python -m shared.healthcheck /ready``: a container health check for the web services.

Exit status 0 when this container's server answers the path with a 2xx status on ``http://127.0.0.1:$PORT``, else 1
with one line saying why (Docker and Podman keep it in ``docker inspect``'s health log). It is a module, not a
``python -c "..."`` one-liner, so the check is an argv without spaces inside its elements
(``["CMD", "python", "-m", "shared.healthcheck", "/ready"]``): Podman's Docker API splits ``CMD`` elements on
spaces, Docker does not, and this form means the same to both. Standard library only: the page's image has no
torch, and the check runs every few seconds.
"""

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 4.0  # below the compose files' healthcheck timeout (5 s), so a hung server is reported, not killed


def check(url: str, timeout_s: float = TIMEOUT_S) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - our own http:// URL
            return True, f"healthy: {url} answered {response.status}"
    except urllib.error.HTTPError as error:
        return False, f"unhealthy: {url} answered {error.code}"
    except (OSError, ValueError) as error:  # refused, timed out, unresolvable, a malformed URL
        return False, f"unhealthy: {url} did not answer: {getattr(error, 'reason', error)}"


def main(argv: list[str]) -> int:
    port = os.environ.get("PORT", "")
    if len(argv) != 1 or not argv[0].startswith("/") or not port.isdigit():
        print("usage: PORT=<port> python -m shared.healthcheck /path", file=sys.stderr)
        return 1  # Docker reserves exit status 2 in health checks
    healthy, message = check(f"http://127.0.0.1:{port}{argv[0]}")
    print(message)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
