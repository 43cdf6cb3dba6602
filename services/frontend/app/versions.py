"""The inference API's GET /models (which version serves, which is latest, the pin, every model on disk), cached
briefly in Redis like /metrics, for the page's "Model versions" card.

The card is extra: when the API cannot list its models (down, or an older API without /models) the page shows
everything else and leaves the card out, so a failure here never costs the page.
"""

from typing import Any

from services.frontend.app.api_client import ApiRefused, ApiUnavailable, InferenceClient
from services.frontend.app.cache import Cache


def versions_key(cache: Cache) -> str:
    return cache.key("models")


def cached_versions(api: InferenceClient, cache: Cache, ttl_s: float) -> dict[str, Any] | None:
    """/models from the cache or the API; None when the API cannot answer it."""
    key = versions_key(cache)
    versions = cache.get_json(key)
    if versions is None:
        try:
            versions = api.models()
        except (ApiUnavailable, ApiRefused):
            return None
        cache.set_json(key, versions, ttl_s)
    return versions


def forget_versions(cache: Cache) -> None:
    """Drop the cached /models (the API serves another model than the page last heard of)."""
    cache.delete(versions_key(cache))
