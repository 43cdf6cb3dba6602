"""Cut request bodies that arrive slower than MIN_BODY_RATE: a trickled body ends within a known bound.

nginx's ``client_body_timeout`` bounds only the pause between two reads (uvicorn has no body timeout at all), so a
client sending a byte every few seconds would keep its request open for ever. Here the whole body is accounted for,
as a plain ASGI middleware around the app's ``receive``:

* once BODY_GRACE_S have passed since the request's headers, the body must have averaged MIN_BODY_RATE bytes per
  second: with ``received`` bytes so far, its deadline is ``start + BODY_GRACE_S + received / MIN_BODY_RATE``.
  One sweep per process, every ``SWEEP_S`` (0.5 s) while bodies are arriving, cuts those past their deadline:
  the request is answered ``408 body_too_slow``, the connection closed, and the client's address logged. A
  request costs a set insertion, not a timer: a timer per ``receive`` (``asyncio.timeout``) doubled this
  middleware's cost on every /predict (measured in-process: about 100 against 50 us on a loaded 2-core machine).
* so a body of n bytes either arrives within BODY_GRACE_S + n / MIN_BODY_RATE seconds or is cut within SWEEP_S
  after that: at the defaults (10 s, 16 KiB/s) the largest body allowed (MAX_BODY_BYTES, 4 MiB) within 266.5 s, a
  28x28 JSON image (about 2 KB) within 10.6 s, a body that stops completely 10 s plus what it sent divided by the
  rate after its headers (plus the sweep).
* an answer sent before the declared body was read (a 401, a 413 on Content-Length, a 404) carries
  ``Connection: close``: otherwise uvicorn keeps the connection and drops the rest of the body as it trickles in,
  with no deadline at all. Requests without a body (no Content-Length, no Transfer-Encoding) keep their keep-alive.

A cut request whose app is waiting in ``receive`` is cancelled there (and the cancellation taken back, as
``asyncio.timeout`` does), so the 408 surfaces as an ``ApiError`` from ``receive``; one whose app is busy between two
reads gets it from its next ``receive``. Behind the edge the API's bodies are passed on as they arrive (nginx.conf:
``proxy_request_buffering off`` on the API's port), so this deadline is the one that cuts a trickle there too;
docs/security.md has the whole picture.
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


SWEEP_S = 0.5


class _Upload:
    """A request whose body is still arriving."""

    __slots__ = ("deadline_base", "received", "task", "cut")

    def __init__(self, grace_ends: float) -> None:
        self.deadline_base, self.received = grace_ends, 0
        self.task: asyncio.Task | None = None  # the task waiting in receive, None while the app is busy elsewhere
        self.cut = False


class BodyRateMiddleware:
    def __init__(self, app: ASGIApp, min_rate: int, grace_s: float) -> None:
        self.app, self.min_rate, self.grace_s = app, min_rate, grace_s
        self.arriving: set[_Upload] = set()
        self.sweep: asyncio.TimerHandle | None = None
        self.sweep_loop: asyncio.AbstractEventLoop | None = None

    def _too_slow(self, received: int) -> ApiError:
        return ApiError(408, "body_too_slow", f"the request body arrived slower than the {self.min_rate} bytes/s "
                                              f"allowed after {self.grace_s:g} s (MIN_BODY_RATE, BODY_GRACE_S): "
                                              f"{received} bytes were received", headers={"Connection": "close"})

    def _watch(self, upload: _Upload, loop: asyncio.AbstractEventLoop) -> None:
        self.arriving.add(upload)
        if self.sweep is None or self.sweep_loop is not loop:
            self.sweep, self.sweep_loop = loop.call_later(SWEEP_S, self._sweep), loop

    def _sweep(self) -> None:
        """Cut every body past its deadline; run again while any is arriving (never while none is)."""
        now = self.sweep_loop.time()
        for upload in [each for each in self.arriving if now > each.deadline_base + each.received / self.min_rate]:
            self.arriving.discard(upload)
            upload.cut = True
            if upload.task is not None:
                upload.task.cancel()
        self.sweep = self.sweep_loop.call_later(SWEEP_S, self._sweep) if self.arriving else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.min_rate or not has_body(scope):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        upload, complete = _Upload(started + self.grace_s), False

        def too_slow() -> ApiError:
            client = scope.get("client")  # behind the edge: the address it saw (FORWARDED_ALLOW_IPS)
            log.info("%s sent its body too slowly: %d bytes in %.1f s, cut (%s %s)",
                     f"{client[0]}:{client[1]}" if client else "a client", upload.received, loop.time() - started,
                     scope["method"], scope["path"])
            return self._too_slow(upload.received)

        async def receive_in_time() -> Message:
            nonlocal complete
            if complete:  # the body is in: waiting for a disconnect is not limited
                return await receive()
            if upload.cut:
                raise too_slow()
            upload.task = asyncio.current_task()
            try:
                message = await receive()
            except asyncio.CancelledError:
                if upload.cut and upload.task.uncancel() == 0:  # our cancellation, nobody else's
                    raise too_slow() from None
                raise
            finally:
                upload.task = None
            if message["type"] == "http.request":
                upload.received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            if complete or message["type"] != "http.request":
                self.arriving.discard(upload)
            return message

        async def send_closing_early(message: Message) -> None:
            if message["type"] == "http.response.start" and not complete:
                headers = [(name, value) for name, value in message.get("headers", []) if name != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        self._watch(upload, loop)
        try:
            await self.app(scope, receive_in_time, send_closing_early)
        finally:
            self.arriving.discard(upload)
