"""``python -m services.inference``: serve the API with uvicorn.

One worker process, no reload: the model, its batching worker thread and the reload poller live in that
process, and uvicorn builds the app through the factory (``create_app()`` reads Settings from the environment).
"""

import logging

import uvicorn

from services.inference.app.config import Settings


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        "services.inference.app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=1,
        reload=False,
        log_level=settings.log_level.lower(),
        access_log=False,  # a log line per request costs more than the prediction; Prometheus counts requests
        proxy_headers=True,  # the client address behind the edge (X-Forwarded-For), only from FORWARDED_ALLOW_IPS
        forwarded_allow_ips=settings.forwarded_allow_ips,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
