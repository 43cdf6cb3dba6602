"""One error shape for every failure: ``{"error": "<snake_case_code>", "detail": "<what is wrong>"}``.

On the Open Inference Protocol's paths (``/v2...``, ``routes/v2.py``) the same errors answer in that protocol's
shape instead, ``{"error": "<what is wrong>"}``, which its clients (Triton's, KServe's) read; the code still
labels the error metrics.

Routes raise ``ApiError``; the handlers below also translate the domain's errors about pictures (``PictureError``,
``NoObjectError``), FastAPI's own validation errors and Starlette's HTTP errors (404, 405, ...), so a client never
sees another format and bad input never becomes a 500.

A client that goes away before its body is complete is not a server error either: Starlette raises
``ClientDisconnect`` from ``request.body()``, which would otherwise reach the catch-all below (a 500 in the
metrics and two tracebacks in the log, per dropped client). It is counted as 499, nginx's "client closed
request", with one short log line. uvicorn answers a malformed body (e.g. a bad chunk size) with its own 400 and
closes the connection, which the app sees the same way, so that is a 499 here too and never a 500.
"""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from services.inference.app.images import (
    EmptyPicture,
    PictureError,
    PictureTooLarge,
    UndecodablePicture,
    UnsupportedPicture,
)
from services.inference.app.responses import OrjsonResponse
from shared.picture import NoObjectError

log = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499  # nginx's code for a client that went away; no response reaches anyone

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type",
              422: "invalid_request", 503: "unavailable"}


# The HTTP status of each domain error about a picture (the error code comes from the exception).
PICTURE_STATUS = {EmptyPicture: 422, PictureTooLarge: 413, UnsupportedPicture: 415, UndecodablePicture: 422}


class ApiError(Exception):
    """A failure the client should see, with its HTTP status and a short code."""

    def __init__(self, status_code: int, error: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status_code, self.error, self.detail, self.headers = status_code, error, detail, headers


def no_model_yet() -> ApiError:
    """The one answer while nothing is loaded: /ready, /predict, /explain, predicted samples and the batcher."""
    return ApiError(503, "not_ready", "no model is loaded yet: nothing published in ARTIFACTS_DIR and no default "
                                      "model in DEFAULT_MODEL_DIR; try again when /ready says ready")


V2_PREFIX = "/v2"  # the Open Inference Protocol's paths


def is_v2_path(path: str) -> bool:
    return path == V2_PREFIX or path.startswith(V2_PREFIX + "/")


def error_response(status_code: int, error: str, detail: str, headers: dict[str, str] | None = None,
                   path: str = "") -> OrjsonResponse:
    """The own API's ``{"error", "detail"}``; on the V2 paths the protocol's ``{"error": detail}``."""
    body = {"error": detail} if is_v2_path(path) else {"error": error, "detail": detail}
    return OrjsonResponse(body, status_code=status_code, headers=headers)


def describe_validation_errors(errors: list[dict], limit: int = 3) -> str:
    """Pydantic/FastAPI errors -> 'pixels.3.5: Input should be ...; top_k: ...' (the first few)."""
    parts = []
    for item in errors[:limit]:
        location = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path"))
        parts.append(f"{location or 'body'}: {item.get('msg', 'invalid')}")
    more = len(errors) - limit
    return "; ".join(parts) + (f" (and {more} more errors)" if more > 0 else "")


def _counted(request: Request, status_code: int, error: str, detail: str, headers=None) -> OrjsonResponse:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(error).inc()
    return error_response(status_code, error, detail, headers, request.scope["path"])


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> OrjsonResponse:
        return _counted(request, error.status_code, error.error, error.detail, error.headers)

    @app.exception_handler(PictureError)
    async def picture_error(request: Request, error: PictureError) -> OrjsonResponse:
        return _counted(request, PICTURE_STATUS.get(type(error), 422), error.code, str(error))

    @app.exception_handler(NoObjectError)
    async def no_object(request: Request, error: NoObjectError) -> OrjsonResponse:
        return _counted(request, 422, "no_object_found", str(error))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> OrjsonResponse:
        return _counted(request, 422, "invalid_request", describe_validation_errors(list(error.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> OrjsonResponse:
        code = HTTP_CODES.get(error.status_code, "http_error")
        return _counted(request, error.status_code, code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def client_went_away(request: Request, _error: ClientDisconnect) -> Response:
        client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
        log.info("%s went away before sending the whole request (%s %s)", client, request.method, request.url.path)
        return Response(status_code=CLIENT_CLOSED_REQUEST)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> OrjsonResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _counted(request, 500, "internal_error", f"unexpected {type(error).__name__}; see the server log")
