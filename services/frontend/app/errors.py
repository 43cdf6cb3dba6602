"""Every refusal and failure as one ``Problem`` (status, short code, message for people), answered as JSON to the
page's script and as a page to a browser: never a stack trace.

``as_problem`` maps what the inference API client and the sample flow raise; the app-wide handlers below answer
Werkzeug's HTTP errors (404, 405, ...) and anything unexpected. An upload over the body limit is answered beside
``/predict`` (``routes.upload_too_large``), as the upload form's own refusals are.
"""

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from services.frontend.app.api_client import ApiRefused, ApiUnavailable
from services.frontend.app.sample_cache import SampleNotFound


class Problem(Exception):
    """A request we refuse: HTTP status, short error code and a message for people."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def wants_json() -> bool:
    """The page's script sends ``Accept: application/json``; a browser's form post prefers HTML."""
    return request.accept_mimetypes.best == "application/json"


def as_problem(exc: Exception) -> Problem:
    """The API down (503), the API's own refusal (its status and words), no such sample (404); anything else
    is raised again."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, ApiUnavailable):
        return Problem(503, "inference_unavailable", exc.detail)
    if isinstance(exc, ApiRefused):
        return Problem(exc.status, exc.error, exc.detail)
    if isinstance(exc, SampleNotFound):
        return Problem(404, "sample_not_found", exc.detail)
    raise exc


def problem_json(problem: Problem):
    return jsonify({"error": problem.error, "detail": problem.detail}), problem.status


def handle_http_error(exc: HTTPException):
    """404/405/... as JSON for scripts and a short page for people."""
    problem = Problem(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"), exc.description or "")
    if wants_json():
        return problem_json(problem)
    return render_template("error.html", problem=problem), problem.status


def handle_unexpected(exc: Exception):
    current_app.logger.exception("unexpected error on %s", request.path)
    problem = Problem(500, "internal_error", "Something went wrong on our side. Please try again.")
    if wants_json():
        return problem_json(problem)
    return render_template("error.html", problem=problem), 500


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
