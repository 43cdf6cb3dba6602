"""The page's routes.

``/`` renders everything server-side (``/?sample=<index>`` shows one test image; works without JavaScript);
``/sample`` and ``/predict`` answer JSON (with a rendered HTML fragment) when the page's script asks for it, and the
full page otherwise; ``/health`` says whether the API and Redis answer. Failures become a ``Problem`` (``errors``).
"""

from typing import Any

from flask import Blueprint, jsonify, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

from services.frontend.app.api_client import NOT_READY, ApiRefused, ApiUnavailable, split_explanation
from services.frontend.app.container import page_services
from services.frontend.app.errors import Problem, as_problem, problem_json, wants_json
from services.frontend.app.page import render_page
from services.frontend.app.sample_cache import SampleNotFound
from services.frontend.app.uploads import read_upload, too_large

bp = Blueprint("frontend", __name__)


def parse_index(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise Problem(400, "invalid_index", f"The sample index must be a whole number, not {raw[:40]!r}.") from None


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
    svc = page_services()
    try:
        record, hit = svc.samples.get(parse_index(request.args.get("index")))
    except (Problem, ApiUnavailable, ApiRefused, SampleNotFound) as exc:
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
    svc = page_services()
    try:
        upload = read_upload(request.files.get("file"), svc.settings.max_upload_bytes)
        answer = svc.api.explain_file(upload.pop("filename"), upload.pop("data"), upload["mime"],
                                      top_k=svc.settings.top_k)
        upload["prediction"], upload["explanation"] = split_explanation(answer)
    except (Problem, ApiUnavailable, ApiRefused) as exc:
        return upload_refused(as_problem(exc))
    if wants_json():
        html = render_template("partials/upload.html", upload=upload)
        return jsonify({"prediction": upload["prediction"], "html": html})
    return render_page(upload=upload)


def upload_refused(problem: Problem):
    """JSON for the page's script; for a browser's form post, the page with the message under the upload form."""
    if wants_json():
        return problem_json(problem)
    return render_page(problem.status, upload_message=problem.detail)


@bp.app_errorhandler(RequestEntityTooLarge)
def upload_too_large(_exc: RequestEntityTooLarge):
    """MAX_CONTENT_LENGTH exceeded (Werkzeug refuses the body before reading it)."""
    problem = too_large(page_services().settings.max_upload_bytes)
    if request.path != "/predict":
        return problem_json(problem)
    return upload_refused(problem)


@bp.get("/health")
def health():
    """200 whenever this app is up; says whether the API and Redis answer (and how the cache is doing)."""
    svc = page_services()
    inference: dict[str, Any] = {"url": svc.settings.inference_url}
    try:
        ready = svc.api.ready()
        inference.update(reachable=True, ready=True, detail="ready", model_version=ready.get("model_version"))
    except ApiUnavailable as exc:
        inference.update(reachable=exc.status is not None, ready=False,
                         detail=exc.detail if exc.detail == NOT_READY else f"unreachable: {exc.__cause__ or exc}")
    except ApiRefused as exc:
        inference.update(reachable=True, ready=False, detail=exc.detail)
    redis_ok, redis_detail = svc.cache.ping()
    return jsonify({"status": "ok", "inference": inference,
                    "redis": {"reachable": redis_ok, "detail": redis_detail}, "cache": svc.cache.stats()})
