"""The page and its JSON helpers.

``/`` renders everything server-side (``/?sample=<index>`` shows one test image; works without JavaScript);
``/sample`` and ``/predict`` answer JSON (with a rendered HTML fragment) when the page's script asks for it, and the
full page otherwise. Every failure of the inference API becomes a friendly message, never a stack trace.
"""

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from werkzeug.datastructures import FileStorage

from services.frontend.app.api_client import NOT_READY, ApiError, ApiUnavailable, InferenceClient, split_explanation
from services.frontend.app.cache import Cache
from services.frontend.app.charts import training_view
from services.frontend.app.config import Settings
from services.frontend.app.images import ACCEPTED, data_uri, sniff_image_type
from services.frontend.app.metrics import cached_metrics, last_known_metrics
from services.frontend.app.samples import SampleNotFound, SampleService
from services.frontend.app.training import section as training_section
from services.frontend.app.versions import cached_versions

bp = Blueprint("frontend", __name__)


@dataclass
class Services:
    """What the views use, built once per app by ``create_app`` (kept in ``app.extensions``)."""

    settings: Settings
    api: InferenceClient
    cache: Cache
    samples: SampleService


class Problem(Exception):
    """A request we refuse: HTTP status, short error code and a message for people."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def services() -> Services:
    return current_app.extensions["fmnist"]


def wants_json() -> bool:
    """The page's script sends ``Accept: application/json``; a browser's form post prefers HTML."""
    return request.accept_mimetypes.best == "application/json"


def as_problem(exc: Exception) -> Problem:
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, ApiUnavailable):
        return Problem(503, "inference_unavailable", exc.detail)
    if isinstance(exc, ApiError):
        return Problem(exc.status, exc.error, exc.detail)
    if isinstance(exc, SampleNotFound):
        return Problem(404, "sample_not_found", exc.detail)
    raise exc


def problem_json(problem: Problem):
    return jsonify({"error": problem.error, "detail": problem.detail}), problem.status


def parse_index(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise Problem(400, "invalid_index", f"The sample index must be a whole number, not {raw[:40]!r}.") from None


def render_page(status: int = 200, *, sample_index: int | None = None, want_sample: bool = True,
                upload: dict[str, Any] | None = None, upload_message: str | None = None,
                sample_message: str | None = None):
    """The whole page. The API being down only replaces the parts that need it with a message."""
    svc = services()
    context: dict[str, Any] = {"settings": svc.settings, "upload": upload, "upload_message": upload_message,
                               "metrics": None, "charts": None, "sample": None, "sample_message": sample_message,
                               "api_message": None, "stale": False, "training": None,
                               "versions": None}
    try:
        metrics = cached_metrics(svc.api, svc.cache, svc.settings.metrics_ttl_s)
    except (ApiUnavailable, ApiError) as exc:
        context["api_message"] = exc.detail
        metrics = last_known_metrics(svc.cache)
        context["stale"] = metrics is not None
    if metrics is not None:
        context["metrics"] = metrics
        context["charts"] = training_view(metrics.get("training") or {})
    if context["api_message"] is None:
        context["training"] = training_section(svc.api, svc.cache, svc.settings.training_ttl_s,
                                               ((metrics or {}).get("model") or {}).get("version"))
        context["versions"] = cached_versions(svc.api, svc.cache, svc.settings.metrics_ttl_s)
    if want_sample and context["api_message"] is None:
        try:
            context["sample"], _ = svc.samples.get(sample_index)
        except ApiUnavailable as exc:  # the API went away since /metrics was cached
            context["api_message"] = exc.detail
        except (ApiError, SampleNotFound) as exc:
            problem = as_problem(exc)
            context["sample_message"] = problem.detail
            if sample_index is not None and status == 200:
                status = problem.status
    return render_template("index.html", **context), status


@bp.get("/")
def index():
    try:
        index = parse_index(request.args.get("sample"))
    except Problem as problem:
        return render_page(problem.status, want_sample=False, sample_message=problem.detail)
    return render_page(sample_index=index)


@bp.get("/sample")
def sample():
    """JSON for the "Random sample" button (``?index=N`` for a given one): the sample and an HTML fragment."""
    svc = services()
    try:
        record, hit = svc.samples.get(parse_index(request.args.get("index")))
    except (Problem, ApiUnavailable, ApiError, SampleNotFound) as exc:
        return problem_json(as_problem(exc))
    body = {**record, "cache": "hit" if hit else "miss",
            "html": render_template("partials/sample.html", sample=record)}
    response = jsonify(body)
    response.headers["X-Cache"] = body["cache"]
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/predict")
def predict():
    """An uploaded (or drawn) picture, passed to the API's /explain as the bytes that came in."""
    svc = services()
    try:
        upload = read_upload(request.files.get("file"), svc.settings.max_upload_bytes)
        answer = svc.api.explain_file(upload.pop("filename"), upload.pop("data"), upload["mime"],
                                      top_k=svc.settings.top_k)
        upload["prediction"], upload["explanation"] = split_explanation(answer)
    except (Problem, ApiUnavailable, ApiError) as exc:
        problem = as_problem(exc)
        if wants_json():
            return problem_json(problem)
        return render_page(problem.status, upload_message=problem.detail)
    if wants_json():
        html = render_template("partials/upload.html", upload=upload)
        return jsonify({"prediction": upload["prediction"], "html": html})
    return render_page(upload=upload)


def read_upload(file: FileStorage | None, limit: int) -> dict[str, Any]:
    if file is None or not file.filename:
        raise Problem(400, "missing_file", "Choose a picture to upload (the form field is called 'file').")
    data = file.read(limit + 1)
    if not data:
        raise Problem(400, "empty_file", f"The file {file.filename!r} is empty.")
    if len(data) > limit:
        raise too_large()
    mime = sniff_image_type(data)
    if mime is None:
        raise Problem(415, "unsupported_media_type",
                      f"{file.filename!r} is not a picture we can read: upload a {ACCEPTED} file.")
    return {"filename": file.filename, "data": data, "mime": mime, "image": data_uri(mime, data),
            "name": file.filename}


def too_large() -> Problem:
    limit = services().settings.max_upload_bytes
    return Problem(413, "file_too_large", f"That picture is too big: the limit is {limit / 1024 / 1024:.1f} MiB. "
                                          "A small picture is plenty, the model looks at 28x28 pixels.")


@bp.get("/health")
def health():
    """200 whenever this app is up; says whether the API and Redis answer (and how the cache is doing)."""
    svc = services()
    inference: dict[str, Any] = {"url": svc.settings.inference_url}
    try:
        ready = svc.api.ready()
        inference.update(reachable=True, ready=True, detail="ready", model_version=ready.get("model_version"))
    except ApiUnavailable as exc:
        inference.update(reachable=exc.status is not None, ready=False,
                         detail=exc.detail if exc.detail == NOT_READY else f"unreachable: {exc.__cause__ or exc}")
    except ApiError as exc:
        inference.update(reachable=True, ready=False, detail=exc.detail)
    redis_ok, redis_detail = svc.cache.ping()
    return jsonify({"status": "ok", "inference": inference,
                    "redis": {"reachable": redis_ok, "detail": redis_detail}, "cache": svc.cache.stats()})


def handle_too_large(_exc):
    """MAX_CONTENT_LENGTH exceeded (Werkzeug refuses the body before reading it)."""
    problem = too_large()
    if wants_json() or request.path != "/predict":
        return problem_json(problem)
    return render_page(problem.status, upload_message=problem.detail)


def handle_http_error(exc):
    """404/405/... as JSON for scripts and a short page for people."""
    problem = Problem(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"), exc.description or "")
    if wants_json():
        return problem_json(problem)
    return render_template("error.html", problem=problem), problem.status


def handle_unexpected(exc):
    current_app.logger.exception("unexpected error on %s", request.path)
    problem = Problem(500, "internal_error", "Something went wrong on our side. Please try again.")
    if wants_json():
        return problem_json(problem)
    return render_template("error.html", problem=problem), 500
