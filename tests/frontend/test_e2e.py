"""End to end over HTTP: the real gunicorn frontend (2 workers) in front of the real inference API and Redis."""

import base64

import redis
import requests

from shared.classes import CLASS_NAMES


def api_sample(inference_url: str, index: int) -> dict:
    return requests.get(f"{inference_url}/samples/{index}", timeout=5).json()


def test_page_sample_cache_and_upload_over_http(frontend_server, redis_server):
    base, api = frontend_server.url, frontend_server.inference_url
    version = requests.get(f"{api}/ready", timeout=5).json()["model_version"]

    page = requests.get(base + "/", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert version in page.text and 'class="pixelated"' in page.text

    index = 1234
    redis.Redis.from_url(redis_server.url).delete(f"{frontend_server.prefix}sample:{version}:{index}")
    first = requests.get(f"{base}/sample?index={index}", headers={"Accept": "application/json"}, timeout=10)
    caches = [requests.get(f"{base}/sample?index={index}", timeout=10).headers["X-Cache"] for _ in range(4)]
    assert first.status_code == 200 and first.headers["X-Cache"] == "miss"
    assert caches == ["hit"] * 4  # whichever worker answers: the cache lives in Redis
    truth = api_sample(api, index)
    assert first.json()["true_label"] == truth["label"] and first.json()["model_version"] == version

    health = requests.get(base + "/health", timeout=10).json()
    assert health["inference"]["reachable"] and health["redis"]["reachable"]
    assert health["cache"]["shared"]["hits"] >= 4 and health["cache"]["shared"]["misses"] >= 1

    png = base64.b64decode(api_sample(api, 0)["image_png_base64"])
    upload = requests.post(base + "/predict", files={"file": ("boot.png", png, "image/png")},
                           headers={"Accept": "application/json"}, timeout=10)
    assert upload.status_code == 200
    assert upload.json()["prediction"]["label"] in CLASS_NAMES
    assert upload.json()["prediction"]["model_version"] == version


def test_bad_uploads_over_http(frontend_server):
    base = frontend_server.url
    too_big = requests.post(base + "/predict", files={"file": ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 3_000_000)},
                            headers={"Accept": "application/json"}, timeout=10)
    assert too_big.status_code == 413 and too_big.json()["error"] == "file_too_large"
    wrong = requests.post(base + "/predict", files={"file": ("a.txt", b"plain text")}, timeout=10)
    assert wrong.status_code == 415 and "is not a picture we can read" in wrong.text


def test_static_assets_are_served_by_gunicorn(frontend_server):
    for name, kind in (("app.js", "javascript"), ("app.css", "text/css")):
        response = requests.get(f"{frontend_server.url}/static/{name}", timeout=5)
        assert response.status_code == 200 and kind in response.headers["Content-Type"]
