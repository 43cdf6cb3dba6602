"""Which replica answered, and with which model: the ``X-Served-By`` and ``X-Model-Version`` headers.

Behind a load balancer (docker-compose.scale.yml: N replicas behind the nginx edge) a client and an operator must
be able to tell the replicas apart, and see which model version each one serves while a new one rolls out (each
replica reloads on its own poll, so for a few seconds two versions answer side by side). Every answer names the
replica (REPLICA_NAME, by default the host name: the container's id under Docker) and, in ``X-Served-By-Worker``,
the worker process in it (its pid): each worker of a replica reloads on its own poll too. Answers of the routes whose
body carries ``model_version`` (/predict, /explain, /ready) repeat it in ``X-Model-Version``, set by the route
from the model that computed that answer (``MODEL_VERSION_HEADER``), so it is right even when a swap happened
while it ran. Their other answers (a 4xx, a 503 before any model) name the model serving at that moment, or none.

A plain ASGI middleware adds the rest to the answer's start; nothing is buffered or parsed.
"""

import os

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MODEL_VERSION_HEADER = "X-Model-Version"
VERSIONED_PATHS = frozenset({"/predict", "/explain", "/ready"})


class ReplicaHeadersMiddleware:
    def __init__(self, app: ASGIApp, replica_name: str) -> None:
        self.app, self.served_by = app, (b"x-served-by", replica_name.encode("latin-1", "replace"))
        self.worker: tuple[bytes, bytes] | None = None  # this process's pid, known once it serves (after a fork)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        versioned = scope["path"].rstrip("/") in VERSIONED_PATHS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.worker = self.worker or (b"x-served-by-worker", str(os.getpid()).encode())
                headers = [*message.get("headers", []), self.served_by, self.worker]
                if versioned and not any(name == b"x-model-version" for name, _value in headers):
                    version = _serving_version(scope)  # a 4xx or 503: the model serving at this moment, if any
                    if version:
                        headers.append((b"x-model-version", version.encode("latin-1", "replace")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _serving_version(scope: Scope) -> str | None:
    """The version serving now (for answers without one in their body), None before the app started a model."""
    serving = getattr(scope["app"].state, "serving", None)
    current = serving.store.current if serving is not None else None
    return current.version if current is not None else None
