"""What the page's routes use (settings, the inference API client, the Redis cache, the sample flow), built once
per app by ``create_app`` and kept in ``app.extensions``; ``page_services()`` hands it to a request."""

from dataclasses import dataclass

from flask import current_app

from services.frontend.app.api_client import InferenceClient
from services.frontend.app.cache import Cache
from services.frontend.app.config import Settings
from services.frontend.app.sample_cache import SampleService

EXTENSION = "fmnist"


@dataclass
class PageServices:
    settings: Settings
    api: InferenceClient
    cache: Cache
    samples: SampleService


def page_services() -> PageServices:
    """This app's ``PageServices`` (inside a request or an app context)."""
    return current_app.extensions[EXTENSION]
