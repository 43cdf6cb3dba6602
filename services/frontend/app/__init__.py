"""The Flask app factory: ``create_app(settings)`` wires settings, the API client, the cache, the sample flow, the
routes and the error handlers."""

import logging
import secrets
from datetime import datetime

from flask import Flask

from services.frontend.app import errors, routes, training
from services.frontend.app.api_client import InferenceClient
from services.frontend.app.cache import Cache
from services.frontend.app.config import Settings
from services.frontend.app.container import EXTENSION, PageServices
from services.frontend.app.proxy import TrustedProxyFix
from services.frontend.app.sample_cache import SampleService

log = logging.getLogger(__name__)

# The page loads nothing from elsewhere; inline styles carry bar widths and heat-map shades.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
                           "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__)
    secret_key = settings.secret_key.get_secret_value() if settings.secret_key else ""
    if not secret_key:
        # Nothing here relies on sessions yet, so a per-process key only means cookies do not survive restarts.
        log.warning("SECRET_KEY is not set: using a random one for this process")
        secret_key = secrets.token_hex(32)
    app.config.update(
        SECRET_KEY=secret_key,
        # The upload limit plus room for the multipart envelope; read_upload checks the file itself exactly.
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + 64 * 1024,
        FRONTEND_SETTINGS=settings,
    )
    api = InferenceClient(settings.inference_url, settings.api_connect_timeout_s, settings.api_read_timeout_s,
                          settings.api_health_timeout_s, pool_size=settings.threads,
                          api_key=settings.inference_api_key.get_secret_value())
    cache = Cache(settings.redis_url, settings.cache_prefix, settings.redis_timeout_s, settings.redis_retry_s)
    samples = SampleService(api, cache, settings.sample_ttl_s, settings.metrics_ttl_s, settings.top_k)
    app.extensions[EXTENSION] = PageServices(settings, api, cache, samples)
    app.register_blueprint(routes.bp)  # the page, /sample, /predict (and its upload-too-large answer), /health
    app.register_blueprint(training.bp)
    app.wsgi_app = TrustedProxyFix(app.wsgi_app, settings.forwarded_allow_ips)  # the client's address behind the edge
    errors.init_app(app)
    _register_filters(app)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return app


def _register_filters(app: Flask) -> None:
    """Number formats used by the templates."""

    def pct(value, digits: int = 1) -> str:
        return "–" if value is None else f"{float(value) * 100:.{digits}f}%"

    def num(value, digits: int = 0) -> str:
        if value is None:
            return "–"
        return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"

    def size(value) -> str:
        if value is None:
            return "–"
        value = float(value)
        return f"{value / 1024:,.1f} KiB" if value < 1024 * 1024 else f"{value / 1024 / 1024:,.1f} MiB"

    def when(value) -> str:
        if not value:
            return "–"
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
        return moment.strftime("%Y-%m-%d %H:%M UTC") if moment.utcoffset() is not None and \
            moment.utcoffset().total_seconds() == 0 else moment.strftime("%Y-%m-%d %H:%M %z")

    def duration(value) -> str:
        if value is None:
            return "–"
        seconds = float(value)
        return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"

    app.add_template_filter(pct)
    app.add_template_filter(num)
    app.add_template_filter(size)
    app.add_template_filter(when)
    app.add_template_filter(duration)
