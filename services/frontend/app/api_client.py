"""The one place that talks HTTP to the inference API, with a timeout on every call.

Callers see two kinds of failure: ``ApiUnavailable`` (API down, slow, or broken: show a friendly message and try
again on the next request) and ``ApiRefused`` (the API understood and refused, e.g. a picture it cannot decode: pass
its 4xx status and message through to the user). ``ApiRefused`` is a refusal as this page receives it, not the
exception the inference service raises to answer one.

With the API's API_KEYS set, every call carries this page's own key (INFERENCE_API_KEY) as ``Authorization: Bearer``;
the key stays in this process: it is never rendered, returned or logged. A 401/403 from the API means the page is
misconfigured, not that the user did something wrong: it is logged for the operator and shown as "unavailable".
"""

import logging
from typing import Any

import requests
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)


class ApiUnavailable(Exception):
    """The inference API could not be reached, timed out, or failed with a 5xx."""

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail, self.status = detail, status  # status: the API's 5xx, None when it did not answer


class ApiRefused(Exception):
    """The inference API answered 4xx; ``status``, ``error`` and ``detail`` come from its JSON body."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status, self.error, self.detail = status, error, detail


UNAVAILABLE = "The prediction service is not answering right now. Please try again in a few seconds."
NOT_READY = "The prediction service is starting up (loading the model). Please try again in a few seconds."


PREDICTION_FIELDS = ("class_id", "label", "confidence", "top_k", "model_version")


def split_explanation(answer: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """/explain's answer -> the prediction (as /predict gives it) and what the page shows of the explanation (the
    overlay as a data URI and the method's name; the raw saliency is not kept or cached)."""
    prediction = {key: answer[key] for key in PREDICTION_FIELDS}
    explanation = {"overlay": f"data:image/png;base64,{answer['overlay_png_base64']}", "method": answer["method"]}
    return prediction, explanation


class InferenceClient:
    """Thin wrapper over the inference API's HTTP contract (see docs/api.md / services.inference)."""

    def __init__(self, base_url: str, connect_timeout_s: float, read_timeout_s: float, health_timeout_s: float = 2.0,
                 pool_size: int = 8, api_key: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.health_timeout = (min(connect_timeout_s, health_timeout_s / 2), health_timeout_s)
        self.session = requests.Session()
        if api_key:  # requests drops it on a redirect to another host
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        # One pool per gunicorn worker, sized for its threads; the API is the only host we talk to.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def metrics(self) -> dict[str, Any]:
        return self._call("GET", "/metrics")

    def models(self) -> dict[str, Any]:
        """Every model on disk, the served and latest versions and the pin (GET /models)."""
        return self._call("GET", "/models")

    def explained_sample(self, index: int, top_k: int) -> dict[str, Any]:
        """A test image with its prediction and explanation (``prediction``, /explain's answer): one call."""
        return self._call("GET", f"/samples/{index}", params={"explain": "true", "top_k": top_k})

    def explain_file(self, filename: str, data: bytes, content_type: str, top_k: int) -> dict[str, Any]:
        """Send the uploaded bytes as they came (the API decodes them; we never do)."""
        files = {"file": (filename or "upload", data, content_type)}
        return self._call("POST", "/explain", params={"top_k": top_k}, files=files)

    def training(self) -> dict[str, Any] | None:
        """The trainer's progress (/training), or None when no run has reported (404: no section on the page)."""
        try:
            return self._call("GET", "/training")
        except ApiRefused as exc:
            if exc.status == 404:
                return None
            raise

    def ready(self) -> dict[str, Any]:
        """For /health: a short timeout (API_HEALTH_TIMEOUT_S), so a hung API never makes this app look unhealthy."""
        return self._call("GET", "/ready", timeout=self.health_timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            kwargs.setdefault("timeout", self.timeout)
            response = self.session.request(method, self.base_url + path, **kwargs)
        except requests.RequestException as exc:  # refused, reset, DNS, connect or read timeout
            raise ApiUnavailable(UNAVAILABLE) from exc
        if response.status_code == 503:
            raise ApiUnavailable(NOT_READY, 503)
        if response.status_code >= 500:
            raise ApiUnavailable(UNAVAILABLE, response.status_code)
        try:
            body = response.json()
        except ValueError as exc:
            raise ApiUnavailable(UNAVAILABLE, response.status_code) from exc
        if response.status_code in (401, 403):
            error = body.get("error") if isinstance(body, dict) else None
            log.error("the inference API refused this page's credentials on %s %s (%d %s): set INFERENCE_API_KEY to "
                      "one of the API's API_KEYS", method, path, response.status_code, error)
            raise ApiUnavailable(UNAVAILABLE, response.status_code)
        if response.status_code >= 400:
            fields = body if isinstance(body, dict) else {}
            detail = fields.get("detail") or "The prediction service refused the request."
            raise ApiRefused(response.status_code, str(fields.get("error") or "bad_request"),
                             detail if isinstance(detail, str) else str(detail))
        return body
