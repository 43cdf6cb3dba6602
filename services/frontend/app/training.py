"""The training section: the API's ``GET /training``, cached briefly in Redis, turned into what the page shows.

While a run goes on the section has a progress bar, the time left and the curves growing epoch by epoch; once it
has finished, the new model's arrival ("new model <version> now serving") when the API has loaded it. The page
renders the section at load (so it works without JavaScript); ``app.js`` then polls ``/training`` here every
TRAINING_POLL_S seconds while there is something to watch and swaps in the body this module renders. No progress
file behind the API (its 404 ``no_training``) means no section; neither that nor the API being away is an error
of the page.
"""

import math
from typing import Any

from flask import Blueprint, jsonify, render_template, request

from services.frontend.app.api_client import ApiRefused, ApiUnavailable, InferenceClient
from services.frontend.app.cache import Cache
from services.frontend.app.charts import line_chart
from services.frontend.app.container import page_services
from services.frontend.app.metrics import forget_metrics, metrics_key

bp = Blueprint("training", __name__)

TITLES = {"running": ("Training in progress", "running"), "stale": ("Training: no word from the trainer", "silent"),
          "finished": ("Last training run", "finished"), "failed": ("Training failed", "failed"),
          "interrupted": ("Training stopped", "interrupted")}
PHASES = {"starting": "loading the data", "training": "training", "validating": "validating",
          "finishing": "testing, calibrating and publishing the best epoch"}


def cached_progress(api: InferenceClient, cache: Cache, ttl_s: float) -> dict[str, Any] | None:
    """/training from the cache or the API; None when no run has reported (``ApiUnavailable`` when it is away)."""
    key = cache.key("training")
    cached = cache.get_json(key)
    if isinstance(cached, dict) and "progress" in cached:
        return cached["progress"]
    progress = api.training()
    cache.set_json(key, {"progress": progress}, ttl_s)
    return progress


def section(api: InferenceClient, cache: Cache, ttl_s: float, shown_version: str | None) -> dict[str, Any] | None:
    """The section's view for the page at load, or None: no run, or the API unable to say."""
    try:
        progress = cached_progress(api, cache, ttl_s)
    except (ApiUnavailable, ApiRefused):
        return None
    return None if progress is None else progress_view(progress, shown_version)


@bp.get("/training")
def training():
    """JSON for app.js: the section's state, whether to keep polling, and its body as HTML ("" = no section)."""
    svc = page_services()
    try:
        progress = cached_progress(svc.api, svc.cache, svc.settings.training_ttl_s)
    except (ApiUnavailable, ApiRefused):
        return jsonify({"error": "training_unavailable",
                        "detail": "The training progress cannot be read right now; the page asks again."}), 503
    body: dict[str, Any] = {"state": None, "poll": False, "serving_version": None, "html": ""}
    if progress is not None:
        view = progress_view(progress, request.args.get("shown") or None)
        if view["arrival"] == "serving":
            forget_older_metrics(svc.cache, view["serving_version"])
        body = {"state": view["state"], "poll": view["poll"], "serving_version": view["serving_version"],
                "html": render_template("partials/training_body.html", training=view)}
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def forget_older_metrics(cache: Cache, serving_version: str | None) -> None:
    """The run's model is serving: drop a cached /metrics of the model before it, so a reload shows the new one."""
    cached = cache.get_json(metrics_key(cache))
    if isinstance(cached, dict) and (cached.get("model") or {}).get("version") != serving_version:
        forget_metrics(cache)


def progress_view(progress: dict[str, Any], shown_version: str | None) -> dict[str, Any]:
    """What ``partials/training_body.html`` draws; every field of the record may be missing or of a wrong type."""
    state = str(progress.get("state") or "unknown")
    settings = progress.get("settings") if isinstance(progress.get("settings"), dict) else {}
    history = [row for row in progress.get("history") or [] if isinstance(row, dict)]
    epochs = _whole(progress.get("epochs")) or _whole(settings.get("epochs"))
    version, serving = progress.get("model_version"), progress.get("serving_version")
    arrival = _arrival(state, version, serving, progress.get("is_latest"))
    title, label = TITLES.get(state, ("Training", state))
    span = (1, epochs) if epochs else None
    return {
        "state": state, "title": title, "label": label, "run_id": progress.get("run_id"),
        "resumed_from_epoch": _whole(progress.get("resumed_from_epoch")), "settings_line": settings_line(settings),
        "percent": 100 * min(1.0, max(0.0, _number(progress.get("fraction")) or 0.0)),
        "epoch": _whole(progress.get("epoch")), "epochs": epochs, "step": _whole(progress.get("step")),
        "steps_per_epoch": _whole(progress.get("steps_per_epoch")), "completed_epochs": len(history),
        "phase": progress.get("phase"), "phase_label": PHASES.get(str(progress.get("phase"))),
        "show_bar": state in ("running", "stale"),
        "time_left": time_left(_number(progress.get("eta_s"))), "elapsed": about(_number(progress.get("elapsed_s"))),
        "silent_for": about(_number(progress.get("heartbeat_age_s"))),
        "images_per_s": _number(progress.get("images_per_s")),
        "best_val_accuracy": max((v for row in history if (v := _number(row.get("val_accuracy"))) is not None),
                                 default=None),
        "training_seconds": sum(_number(row.get("seconds")) or 0.0 for row in history),
        "finished_at": progress.get("finished_at"), "failure": progress.get("failure") or {},
        "detail": progress.get("detail"), "model_version": version, "serving_version": serving,
        "arrival": arrival, "reload": arrival == "serving" and shown_version not in (None, serving),
        "poll": state in ("running", "stale") or arrival == "pending",
        "charts": None if state == "finished" else {
            "loss": line_chart(history, [("train_loss", "Training"), ("val_loss", "Validation")],
                               "Loss per epoch", zero_based=True, epoch_span=span),
            "accuracy": line_chart(history, [("train_accuracy", "Training"), ("val_accuracy", "Validation")],
                                   "Accuracy per epoch", zero_based=False, epoch_span=span)},
    }


def _arrival(state: str, version: Any, serving: Any, is_latest: Any) -> str | None:
    """A finished run's model: ``serving`` (the API serves it), ``pending`` (published, the API not there yet) or
    ``kept`` (on disk, but latest.json names another model)."""
    if state != "finished" or not version:
        return None
    if version == serving:
        return "serving"
    return "kept" if is_latest is False else "pending"


def settings_line(settings: dict[str, Any]) -> str:
    """'cpu · fp32 · batch 128 · lr 0.003 · 2 processes' from what the run recorded."""
    parts = [str(settings[key]) for key in ("device", "precision") if settings.get(key)]
    if settings.get("batch_size"):
        parts.append(f"batch {settings['batch_size']}")
    if settings.get("lr") is not None:
        parts.append(f"lr {settings['lr']:g}" if isinstance(settings["lr"], int | float) else f"lr {settings['lr']}")
    size = _whole(settings.get("world_size"))
    if size and size > 1:
        parts.append(f"{size} processes")
    return " · ".join(parts)


def time_left(seconds: float | None) -> str:
    if seconds is None:
        return "estimating the time left"
    return "almost done" if seconds < 1 else f"about {about(seconds)} left"


def about(seconds: float | None) -> str | None:
    """A duration as people say it: '40 s', '8 min', '1 h 05 min'."""
    if seconds is None:
        return None
    if seconds < 90:
        return f"{max(0, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _whole(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)
