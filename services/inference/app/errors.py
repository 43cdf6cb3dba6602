"""One error shape for every failure: ``{"error": "<snake_case_code>", "detail": "<what is wrong>"}``.

On the Open Inference Protocol's paths (``/v2...``, ``routes/v2.py``) the same errors answer in that protocol's
shape instead, ``{"error": "<what is wrong>"}``, which its clients (Triton's, KServe's) read; the code still
labels the error metrics.

The HTTP layer (routes, their dependencies ``deps`` and ``auth``, the request readers ``inputs``, the middlewares)
raises ``ApiError``. The modules below it raise their own domain errors and know nothing of HTTP; this is the one
place that gives each its status and code (``DOMAIN_ERRORS``, ``PICTURE_STATUS``, ``TENSOR_STATUS``): no model yet
(``NoModelLoaded``, from a route or the micro-batcher's thread), the test images (``SamplesUnavailable``,
``SampleNotFound``), multipart bodies (``MalformedMultipart``, ``TooManyParts``), pictures (``PictureError``,
``NoObjectError``) and V2 tensors (``TensorError``). FastAPI's own validation errors and Starlette's HTTP errors
(404, 405, ...) are translated too, so a client never sees another format and bad input never becomes a 500.

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

from services.inference.app.model_store import NoModelLoaded
from services.inference.app.multipart import MalformedMultipart, TooManyParts
from services.inference.app.picture_decoding import (
    EmptyPicture,
    PictureError,
    PictureTooLarge,
    UndecodablePicture,
    UnsupportedPicture,
)
from services.inference.app.responses import OrjsonResponse
from services.inference.app.sample_store import SampleNotFound, SamplesUnavailable
from services.inference.app.v2_codec import TensorError
from services.inference.app.validation_text import describe_validation_errors
from shared.picture import NoObjectError

log = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499  # nginx's code for a client that went away; no response reaches anyone

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type",
              422: "invalid_request", 503: "unavailable"}


# The status and code of each domain error (its message is the detail).
DOMAIN_ERRORS: dict[type[Exception], tuple[int, str]] = {
    NoModelLoaded: (503, "not_ready"),
    SamplesUnavailable: (503, "samples_unavailable"),
    SampleNotFound: (404, "sample_not_found"),
    MalformedMultipart: (400, "invalid_multipart"),
    TooManyParts: (413, "too_many_files"),
    NoObjectError: (422, "no_object_found"),
}
# The HTTP status of each domain error about a picture (the error code comes from the exception).
PICTURE_STATUS = {EmptyPicture: 422, PictureTooLarge: 413, UnsupportedPicture: 415, UndecodablePicture: 422}
# The HTTP status of a V2 tensor error by its code (every other one is a 400).
TENSOR_STATUS = {"too_many_instances": 413, "invalid_pixels": 422}


class ApiError(Exception):
    """A failure the client should see, with its HTTP status and a short code."""

    def __init__(self, status_code: int, error: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status_code, self.error, self.detail, self.headers = status_code, error, detail, headers


V2_PREFIX = "/v2"  # the Open Inference Protocol's paths


def is_v2_path(path: str) -> bool:
    return path == V2_PREFIX or path.startswith(V2_PREFIX + "/")


def error_response(status_code: int, error: str, detail: str, headers: dict[str, str] | None = None,
                   path: str = "") -> OrjsonResponse:
    """The own API's ``{"error", "detail"}``; on the V2 paths the protocol's ``{"error": detail}``."""
    body = {"error": detail} if is_v2_path(path) else {"error": error, "detail": detail}
    return OrjsonResponse(body, status_code=status_code, headers=headers)


def _counted(request: Request, status_code: int, error: str, detail: str, headers=None) -> OrjsonResponse:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(error).inc()
    return error_response(status_code, error, detail, headers, request.scope["path"])


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> OrjsonResponse:
        return _counted(request, error.status_code, error.error, error.detail, error.headers)

    async def domain_error(request: Request, error: Exception) -> OrjsonResponse:
        status_code, code = next(answer for kind, answer in DOMAIN_ERRORS.items() if isinstance(error, kind))
        return _counted(request, status_code, code, str(error))

    for kind in DOMAIN_ERRORS:  # Starlette picks the handler by the exception's class (or its nearest base)
        app.add_exception_handler(kind, domain_error)

    @app.exception_handler(PictureError)
    async def picture_error(request: Request, error: PictureError) -> OrjsonResponse:
        return _counted(request, PICTURE_STATUS.get(type(error), 422), error.code, str(error))

    @app.exception_handler(TensorError)
    async def tensor_error(request: Request, error: TensorError) -> OrjsonResponse:
        return _counted(request, TENSOR_STATUS.get(error.code, 400), error.code, str(error))

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
