"""The inference API's /metrics (model version, training report, sample count), cached briefly in Redis.

Briefly, because the API hot-reloads newly published models: after ``metrics_ttl_s`` the page shows the new one.
A copy is also kept for a day as the "last known" report, so that with the API down the page can still describe
the model (clearly marked) next to its "unavailable" message.
"""

from typing import Any

from services.frontend.app.api_client import InferenceClient
from services.frontend.app.cache import Cache

LAST_KNOWN_TTL_S = 24 * 3600


def metrics_key(cache: Cache) -> str:
    return cache.key("metrics")


def cached_metrics(api: InferenceClient, cache: Cache, ttl_s: float) -> dict[str, Any]:
    """/metrics from the cache, or from the API (raises ``ApiUnavailable`` when it is down and nothing is cached)."""
    key = metrics_key(cache)
    metrics = cache.get_json(key)
    if metrics is None:
        metrics = api.metrics()
        cache.set_json(key, metrics, ttl_s)
        cache.set_json(cache.key("metrics", "last"), metrics, LAST_KNOWN_TTL_S)
    return metrics


def last_known_metrics(cache: Cache) -> dict[str, Any] | None:
    """The most recent /metrics this app saw (for the page while the API is away), or None."""
    return cache.get_json(cache.key("metrics", "last"))


def forget_metrics(cache: Cache) -> None:
    """Drop the cached /metrics (called when a prediction reveals that the API serves a newer model)."""
    cache.delete(metrics_key(cache))
