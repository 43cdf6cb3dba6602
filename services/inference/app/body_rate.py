"""Cut request bodies that arrive slower than MIN_BODY_RATE: a trickled body ends within a known bound.

nginx's ``client_body_timeout`` bounds only the pause between two reads (uvicorn has no body timeout at all), so a
client sending a byte every few seconds would keep its request open for ever. Here the whole body is accounted for,
as a plain ASGI middleware around the app's ``receive``:

* once BODY_GRACE_S have passed since the request's headers, the body must have averaged MIN_BODY_RATE bytes per
  second: with ``received`` bytes so far, the next part must arrive before ``start + BODY_GRACE_S + received /
  MIN_BODY_RATE``. The app waits for it under that deadline (``asyncio.timeout_at``, no thread, no polling);
  when it passes, the request is answered ``408 body_too_slow`` and the connection closed.
* so a body of n bytes either arrives within BODY_GRACE_S + n / MIN_BODY_RATE seconds or is cut then: at the
  defaults (10 s, 16 KiB/s) the largest body allowed (MAX_BODY_BYTES, 4 MiB) within 266 s, a 28x28 JSON image
  (about 2 KB) within 10.1 s, and a body that stalls completely at 10 s plus what it sent divided by the rate.
* an answer sent before the declared body was read (a 401, a 413 on Content-Length, a 404) carries
  ``Connection: close``: otherwise uvicorn keeps the connection and drops the rest of the body as it trickles in,
  with no deadline at all. Requests without a body (no Content-Length, no Transfer-Encoding) keep their keep-alive.

Behind the edge the API's bodies are passed on as they arrive (nginx.conf: ``proxy_request_buffering off`` on the
API's port), so this deadline is the one that cuts a trickle there too; docs/security.md has the whole picture.
"""

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.inference.app.errors import ApiError

log = logging.getLogger(__name__)


def has_body(scope: Scope) -> bool:
    """Whether the request declares a body (a non-zero Content-Length, or any Transfer-Encoding)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"0", b"")):
            return True
    return False


class BodyRateMiddleware:
    def __init__(self, app: ASGIApp, min_rate: int, grace_s: float) -> None:
        self.app, self.min_rate, self.grace_s = app, min_rate, grace_s

    def _too_slow(self, received: int) -> ApiError:
        return ApiError(408, "body_too_slow", f"the request body arrived slower than the {self.min_rate} bytes/s "
                                              f"allowed after {self.grace_s:g} s (MIN_BODY_RATE, BODY_GRACE_S): "
                                              f"{received} bytes were received", headers={"Connection": "close"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.min_rate or not has_body(scope):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        grace_ends = loop.time() + self.grace_s
        received, complete = 0, False

        async def receive_in_time() -> Message:
            nonlocal received, complete
            if complete:  # the body is in: waiting for a disconnect is not limited
                return await receive()
            try:
                async with asyncio.timeout_at(grace_ends + received / self.min_rate):
                    message = await receive()
            except TimeoutError:
                client = scope.get("client")  # behind the edge: the address it saw (FORWARDED_ALLOW_IPS)
                log.info("%s sent its body too slowly: %d bytes in %.1f s, cut (%s %s)",
                         f"{client[0]}:{client[1]}" if client else "a client", received,
                         loop.time() - grace_ends + self.grace_s, scope["method"], scope["path"])
                raise self._too_slow(received) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            return message

        async def send_closing_early(message: Message) -> None:
            if message["type"] == "http.response.start" and not complete:
                headers = [(name, value) for name, value in message.get("headers", []) if name != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive_in_time, send_closing_early)
