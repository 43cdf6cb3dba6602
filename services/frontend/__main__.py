"""``python -m services.frontend``: serve the page with gunicorn (never Flask's debug server).

The process execs gunicorn so that it receives signals directly (Ctrl-C, ``docker stop``, a test's SIGTERM).
Every setting comes from the environment (see ``services/frontend/app/config.py``); the workers read it again.
"""

import os
import sys

from services.frontend.app.config import Settings


def gunicorn_argv(settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{settings.host}:{settings.port}",
        "--workers", str(settings.workers),
        "--threads", str(settings.threads),
        "--timeout", str(settings.worker_timeout_s),
        "--graceful-timeout", "5",
        "--access-logfile", "-",
        "--error-logfile", "-",
        "--no-control-socket",  # gunicorn 27 otherwise shares one socket path between instances
        "--forwarded-allow-ips", settings.forwarded_allow_ips,  # the edge: its X-Forwarded-Proto is believed
        "services.frontend.app:create_app()",
    ]


def main() -> None:
    argv = gunicorn_argv(Settings())
    os.execv(argv[0], argv)  # noqa: S606 - gunicorn replaces this process; argv is ours, no shell


if __name__ == "__main__":
    main()
