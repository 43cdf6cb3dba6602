"""API keys on the prediction endpoints, the admin token on management, and what /docs says about both.

The real API with API_KEYS set: without a key 401, with a wrong key 401, with either right key 200, on every
prediction endpoint; probes, metrics and the docs stay open; the keys appear in no log line, no metric and no answer.
``AdminDep`` is tested on a small route of a test app (the management routes themselves live with their own tests).
"""

import base64
import json
from types import SimpleNamespace

import pytest
import requests
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from services.inference.app.auth import AdminDep, ApiKeyDep, matches_any
from services.inference.app.config import Settings
from services.inference.app.errors import install_error_handlers
from tests.reliability.clients import JSON_BODY
from tests.security.conftest import API_KEYS, bearer, log_text

JSON = {"Content-Type": "application/json"}
WRONG_KEY = "key-for-scripts-2b7c1e9f0a4e"  # one character off the first key


def prediction_calls(api_url: str) -> dict[str, tuple[str, str, dict]]:
    """name -> (method, url, requests keyword arguments) for every endpoint that takes an API key."""
    png = base64.b64decode(requests.get(f"{api_url}/samples/0", headers=bearer(API_KEYS[0]), timeout=10)
                           .json()["image_png_base64"])
    return {
        "predict json": ("POST", f"{api_url}/predict", {"data": JSON_BODY, "headers": JSON}),
        "predict file": ("POST", f"{api_url}/predict", {"files": {"file": ("x.png", png, "image/png")}}),
        "explain": ("POST", f"{api_url}/explain", {"files": {"file": ("x.png", png, "image/png")}}),
        "random samples": ("GET", f"{api_url}/samples/random?count=2", {}),
        "sample explained": ("GET", f"{api_url}/samples/3?explain=true", {}),
    }


def send(method: str, url: str, options: dict, key: str | None) -> requests.Response:
    headers = {**options.get("headers", {}), **(bearer(key) if key is not None else {})}
    return requests.request(method, url, **{**options, "headers": headers}, timeout=30)


def test_prediction_endpoints_need_one_of_the_keys(api):
    for name, (method, url, options) in prediction_calls(api.url).items():
        missing = send(method, url, options, None)
        assert missing.status_code == 401, (name, missing.text)
        assert missing.json()["error"] == "api_key_required" and missing.headers["WWW-Authenticate"] == "Bearer"
        wrong = send(method, url, options, WRONG_KEY)
        assert wrong.status_code == 401, (name, wrong.text)
        assert wrong.json()["error"] == "invalid_api_key"
        assert wrong.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        basic = send(method, url, {**options, "headers": {**options.get("headers", {}),
                                                          "Authorization": f"Basic {API_KEYS[0]}"}}, None)
        assert basic.status_code == 401, (name, "only the Bearer scheme carries a key")
        for key in API_KEYS:
            right = send(method, url, options, key)
            assert right.status_code == 200, (name, right.text)


def test_probes_metrics_and_docs_stay_open(api):
    for path in ("/health", "/ready", "/metrics", "/metrics/prometheus", "/docs", "/openapi.json"):
        assert requests.get(f"{api.url}{path}", timeout=10).status_code == 200, path


def test_the_keys_are_never_logged_counted_or_echoed(api):
    answers = [send(method, url, options, key).text for method, url, options in prediction_calls(api.url).values()
               for key in (None, WRONG_KEY, *API_KEYS)]
    answers += [requests.get(f"{api.url}{path}", timeout=10).text for path in ("/metrics", "/metrics/prometheus",
                                                                               "/openapi.json")]
    for secret in (*API_KEYS, WRONG_KEY):
        assert all(secret not in answer for answer in answers)
        assert secret not in log_text(api)
    prometheus = requests.get(f"{api.url}/metrics/prometheus", timeout=10).text
    assert 'error="api_key_required"' in prometheus and 'error="invalid_api_key"' in prometheus  # counted by kind


def _expected_security(method: str, path: str) -> list[dict] | None:
    """Predictions (the own API's and the V2 protocol's) take an API key, pinning the admin token; reads are open."""
    if path.startswith(("/predict", "/explain", "/samples")) or (path.startswith("/v2/") and path.endswith("/infer")):
        return [{"ApiKey": []}]
    if path.startswith("/models/") and method in ("post", "delete"):
        return [{"AdminToken": []}]
    return None


def test_openapi_declares_the_key_on_the_prediction_endpoints_only(api):
    schema = requests.get(f"{api.url}/openapi.json", timeout=10).json()
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http", "scheme": "bearer", "description": "one of API_KEYS; only needed when the server sets API_KEYS"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            expected = _expected_security(method, path)
            assert operation.get("security") == expected, (method, path)
            if expected == [{"ApiKey": []}]:
                assert "401" in operation["responses"], (method, path)


def test_without_api_keys_the_documented_key_is_optional():
    """FastAPI's TestClient runs no lifespan here: the schema needs only the routes."""
    from services.inference.app.main import create_app

    schema = create_app(Settings(api_keys="")).openapi()
    assert schema["paths"]["/predict"]["post"]["security"] == [{"ApiKey": []}, {}]
    required = create_app(Settings(api_keys="k" * 20)).openapi()
    assert required["paths"]["/predict"]["post"]["security"] == [{"ApiKey": []}]


def admin_app(admin_token: str, api_keys: str = "") -> TestClient:
    """A small app with a management route (AdminDep) and a prediction-like route (ApiKeyDep)."""
    app = FastAPI()
    install_error_handlers(app)
    app.state.serving = SimpleNamespace(settings=Settings(admin_token=admin_token, api_keys=api_keys))

    @app.post("/manage", dependencies=[AdminDep])
    async def manage() -> dict:
        return {"done": True}

    @app.get("/use", dependencies=[ApiKeyDep])
    async def use() -> dict:
        return {"used": True}

    return TestClient(app)


def test_management_is_disabled_without_an_admin_token_and_needs_it_otherwise():
    disabled = admin_app("")
    for headers in ({}, bearer(""), bearer("anything-at-all-123456")):
        answer = disabled.post("/manage", headers=headers)
        assert answer.status_code == 403 and answer.json()["error"] == "management_disabled", headers
    token = "admin-token-7f3e9a1c5b2d"
    enabled = admin_app(token, api_keys=API_KEYS[0])
    for headers in ({}, bearer(token[:-1]), bearer(token + "x"), bearer(API_KEYS[0]), {"Authorization": token}):
        answer = enabled.post("/manage", headers=headers)
        assert answer.status_code == 403 and answer.json() == {
            "error": "admin_token_required", "detail": "this is a management endpoint: send `Authorization: Bearer "
                                                       "<ADMIN_TOKEN>`"}, headers
        assert token not in answer.text
    assert enabled.post("/manage", headers=bearer(token)).json() == {"done": True}
    assert enabled.get("/use", headers=bearer(token)).status_code == 401, "the admin token is not an API key"
    schema = enabled.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"ApiKey", "AdminToken"}
    assert schema["paths"]["/manage"]["post"]["security"] == [{"AdminToken": []}]
    assert schema["paths"]["/use"]["get"]["security"] == [{"ApiKey": []}]


@pytest.mark.parametrize("given,secrets,expected", [
    ("abc", ["abc"], True), ("abc", ["abd"], False), ("abc", ["abcd"], False), ("", ["abc"], False),
    ("two", ["one", "two", "three"], True), ("four", ["one", "two", "three"], False), ("x", [], False),
])
def test_keys_match_exactly(given, secrets, expected):
    assert matches_any(given, secrets) is expected


def test_a_key_no_client_could_send_is_refused_at_start_without_showing_it():
    for value in ("good-key-1234567890,with space inside", "ключ-1234567890"):
        with pytest.raises(ValidationError) as refused:
            Settings(api_keys=value)
        assert "printable ASCII" in str(refused.value) and value.split(",")[-1] not in str(refused.value)
    assert Settings(api_keys=" a-key-1234567890 , another.key_0987654321 ").api_key_list == [
        "a-key-1234567890", "another.key_0987654321"]
    assert "a-key" not in repr(Settings(api_keys="a-key-1234567890")) and "a-key" not in json.dumps(
        Settings(api_keys="a-key-1234567890").model_dump(mode="json"))


def test_a_page_whose_key_is_refused_says_unavailable_and_tells_the_operator(api, redis_server, caplog):
    from services.frontend.app import create_app as create_page
    from services.frontend.app.config import Settings as PageSettings

    page = create_page(PageSettings(inference_url=api.url, inference_api_key=WRONG_KEY, redis_url=redis_server.url,
                                    cache_prefix="test-security-refused:", secret_key="test-secret"))
    with caplog.at_level("ERROR", logger="services.frontend.app.api_client"):
        answer = page.test_client().get("/sample", headers={"Accept": "application/json"})
    assert answer.status_code == 503 and answer.get_json()["error"] == "inference_unavailable", answer.get_json()
    assert WRONG_KEY not in answer.get_data(as_text=True)
    assert any("INFERENCE_API_KEY" in record.getMessage() and WRONG_KEY not in record.getMessage()
               for record in caplog.records)
