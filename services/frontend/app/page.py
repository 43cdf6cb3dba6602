"""The whole page, rendered server-side (it works without JavaScript): the model's metrics and charts, the training
section, the model versions card, a test sample and the upload form. The API being down only replaces the parts that
need it with a message (and the last known metrics, marked stale)."""

from typing import Any

from flask import render_template

from services.frontend.app.api_client import ApiRefused, ApiUnavailable
from services.frontend.app.charts import training_view
from services.frontend.app.container import page_services
from services.frontend.app.errors import as_problem
from services.frontend.app.metrics import cached_metrics, last_known_metrics
from services.frontend.app.sample_cache import SampleNotFound
from services.frontend.app.training import section as training_section
from services.frontend.app.versions import cached_versions


def render_page(status: int = 200, *, sample_index: int | None = None, want_sample: bool = True,
                upload: dict[str, Any] | None = None, upload_message: str | None = None,
                sample_message: str | None = None):
    """The page and its status: ``status``, or the sample's 404 when the asked-for ``sample_index`` does not exist."""
    svc = page_services()
    context: dict[str, Any] = {"settings": svc.settings, "upload": upload, "upload_message": upload_message,
                               "metrics": None, "charts": None, "sample": None, "sample_message": sample_message,
                               "api_message": None, "stale": False, "training": None,
                               "versions": None}
    try:
        metrics = cached_metrics(svc.api, svc.cache, svc.settings.metrics_ttl_s)
    except (ApiUnavailable, ApiRefused) as exc:
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
        except (ApiRefused, SampleNotFound) as exc:
            problem = as_problem(exc)
            context["sample_message"] = problem.detail
            if sample_index is not None and status == 200:
                status = problem.status
    return render_template("index.html", **context), status
