"""Refuse request bodies over MAX_BODY_BYTES before they are buffered, as a plain ASGI middleware.

Two checks, because a client may lie or omit Content-Length (chunked uploads): the declared length is
refused up front, and the bytes actually received are counted while the route reads them.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.inference.app.errors import ApiError, error_response


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _too_large(self, size: str) -> tuple[int, str, str]:
        return 413, "body_too_large", f"request body of {size} is over the {self.max_bytes} bytes allowed " \
                                      "(MAX_BODY_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await error_response(400, "bad_content_length", f"Content-Length {value!r} is not a number",
                                         path=scope["path"])(scope, receive, send)
                    return
                if declared > self.max_bytes:
                    await error_response(*self._too_large(f"{declared} bytes"), path=scope["path"])(
                        scope, receive, send)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise ApiError(*self._too_large(f"more than {self.max_bytes} bytes"))
            return message

        await self.app(scope, counting_receive, send)
