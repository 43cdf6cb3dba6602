"""The Flask views against the real inference API process and a real Redis (no mocks)."""

import base64
import io
import json
import logging
import socket
import time

import pytest
import redis
import requests
from PIL import Image

from shared.classes import CLASS_NAMES
from tests.frontend.conftest import start_inference
from tests.processes import free_port

JSON = {"Accept": "application/json"}


def png_bytes(size: int = 1) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (size, size), 0).save(buffer, format="PNG")
    return buffer.getvalue()


PNG_1PX = png_bytes()


def sample_png(inference_url: str, index: int = 0) -> bytes:
    """A real 28x28 test image as PNG bytes, as the API serves it."""
    body = requests.get(f"{inference_url}/samples/{index}", timeout=5).json()
    return base64.b64decode(body["image_png_base64"])


def served_version(inference_url: str) -> str:
    return requests.get(f"{inference_url}/ready", timeout=5).json()["model_version"]


def redis_client(redis_server) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url, socket_timeout=2)


def test_page_shows_the_model_a_sample_and_the_charts(make_app, inference_api):
    response = make_app().test_client().get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert served_version(inference_api) in page
    assert "test accuracy" in page and "Training images" in page and "Optimizer" in page
    assert 'id="sample-button"' in page and ">Random sample<" in page
    assert 'class="pixelated"' in page and 'alt="Test image ' in page
    assert page.count('class="topk-row') == 3
    assert "<svg" in page and "Loss per epoch" in page and "Accuracy per epoch" in page
    assert 'class="confusion"' in page and page.count("<td class=\"diag") == 10
    assert 'aria-live="polite"' in page
    assert "https://" not in page and "http://" not in page.replace(inference_api, "")  # nothing from a CDN


def test_page_reports_calibration_and_explains_the_sample(make_app, inference_api):
    """The tiny model was published by the trainer, so it has a temperature and a calibration report."""
    training = requests.get(f"{inference_api}/metrics", timeout=5).json()["training"]
    calibration = training["calibration"]["test"]
    page = make_app().test_client().get("/").get_data(as_text=True)
    ece = f"{calibration['before']['ece'] * 100:.2f}% → {calibration['after']['ece'] * 100:.2f}%"
    nll = f"{calibration['before']['nll']:,.4f} → {calibration['after']['nll']:,.4f}"
    assert f'data-testid="ece">{ece}<' in page and f'data-testid="nll">{nll}<' in page
    assert "calibrated, temperature" in page
    assert 'data-testid="reliability-diagram"' in page and 'class="diagonal"' in page
    assert page.count('<circle class="dot series-') >= 2 and "Perfect calibration" in page
    assert 'data-testid="overlay"' in page and 'src="data:image/png;base64,' in page


def test_sample_miss_then_hit_is_counted_and_cached_with_a_ttl_under_the_model_version(make_app, inference_api,
                                                                                         redis_server):
    app = make_app(sample_ttl_s=600, metrics_ttl_s=60)
    client, cache = app.test_client(), app.extensions["fmnist"].cache
    first = client.get("/sample?index=7")
    second = client.get("/sample?index=7")
    assert first.status_code == second.status_code == 200
    assert (first.json["cache"], second.json["cache"]) == ("miss", "hit")
    assert second.headers["X-Cache"] == "hit"
    assert (cache.hits, cache.misses) == (1, 1)

    version = served_version(inference_api)
    key = f"{cache.prefix}sample:{version}:7"
    store = redis_client(redis_server)
    assert 0 < store.ttl(key) <= 600
    assert json.loads(store.get(key))["index"] == 7
    assert int(store.get(f"{cache.prefix}stats:hits")) == 1 and int(store.get(f"{cache.prefix}stats:misses")) == 1
    assert 0 < store.ttl(f"{cache.prefix}metrics") <= 60

    body = first.json
    assert body["model_version"] == version and body["true_label"] in CLASS_NAMES
    assert body["prediction"]["label"] in CLASS_NAMES and len(body["prediction"]["top_k"]) == 3
    assert body["correct"] == (body["prediction"]["class_id"] == body["true_class_id"])
    assert body["image"].startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(body["image"].split(",", 1)[1])))
    assert image.size == (28, 28)  # the API's PNG as it came: the page scales it up with CSS
    assert f"#{7}" in body["html"] and body["prediction"]["label"] in body["html"]
    assert second.json["prediction"] == body["prediction"]
    assert set(body["prediction"]) == {"class_id", "label", "confidence", "top_k", "model_version"}
    overlay = Image.open(io.BytesIO(base64.b64decode(body["explanation"]["overlay"].split(",", 1)[1])))
    assert overlay.size == (280, 280) and "occlusion" in body["explanation"]["method"]
    assert body["explanation"]["overlay"] in body["html"] and second.json["explanation"] == body["explanation"]


def available_samples(inference_url: str) -> int:
    return requests.get(f"{inference_url}/metrics", timeout=5).json()["samples"]["available"]


def test_random_samples_stay_in_range_and_vary(make_app, inference_api):
    client = make_app().test_client()
    indexes = {client.get("/sample").json["index"] for _ in range(8)}
    assert len(indexes) > 1
    assert all(0 <= index < available_samples(inference_api) for index in indexes)


def test_bad_sample_indexes_get_clear_errors(make_app, inference_api):
    client = make_app().test_client()
    assert client.get("/sample?index=abc").json["error"] == "invalid_index"
    available = available_samples(inference_api)
    missing = client.get(f"/sample?index={available}")
    assert missing.status_code == 404 and missing.json["error"] == "sample_not_found"
    assert f"0 to {available - 1}" in missing.json["detail"]
    assert client.get("/sample?index=-1").status_code == 404
    page = client.get("/?sample=abc")
    assert page.status_code == 400 and "whole number" in page.get_data(as_text=True)
    linked = client.get("/?sample=12")
    assert linked.status_code == 200 and 'data-testid="sample-index">#12<' in linked.get_data(as_text=True)


def test_a_new_model_version_is_never_served_from_an_old_versions_entry(make_app, inference_api, redis_server):
    """The cached /metrics still names an older model: the entry is stored under the version that predicted."""
    app = make_app()
    cache = app.extensions["fmnist"].cache
    client = app.test_client()
    client.get("/sample?index=3")  # caches /metrics
    store = redis_client(redis_server)
    stale = json.loads(store.get(f"{cache.prefix}metrics"))
    stale["model"]["version"] = "older-model"
    store.set(f"{cache.prefix}metrics", json.dumps(stale), ex=3600)

    body = client.get("/sample?index=4").json
    version = served_version(inference_api)
    assert body["model_version"] == version
    assert store.exists(f"{cache.prefix}sample:{version}:4")
    assert not store.exists(f"{cache.prefix}sample:older-model:4")
    assert not store.exists(f"{cache.prefix}metrics")  # dropped, so the page refreshes the model panel


def test_redis_down_page_still_works_logged_once_and_caching_resumes(make_app, redis_server, caplog):
    app = make_app()
    client, cache = app.test_client(), app.extensions["fmnist"].cache
    assert client.get("/sample?index=11").json["cache"] == "miss"
    caplog.set_level(logging.WARNING, logger="services.frontend.app.cache")
    redis_server.stop()
    try:
        for _ in range(3):
            assert client.get("/").status_code == 200
            response = client.get("/sample?index=11")
            assert response.status_code == 200 and response.json["cache"] == "miss"
        health = client.get("/health")
        assert health.status_code == 200 and health.json["redis"]["reachable"] is False
        assert "unreachable" in health.json["redis"]["detail"]
        down_logs = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
        assert len(down_logs) == 1, [r.getMessage() for r in caplog.records]
        assert cache.errors > 1
    finally:
        redis_server.start()
    states = [client.get("/sample?index=11").json["cache"] for _ in range(4)]
    assert "hit" in states, states
    assert client.get("/health").json["redis"]["reachable"] is True
    assert any("Redis is back" in r.getMessage() for r in caplog.records)


def test_inference_api_down_shows_a_friendly_message(make_app):
    client = make_app(inference_url=f"http://127.0.0.1:{free_port()}").test_client()
    page = client.get("/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Predictions are unavailable" in text and "not answering" in text and "Traceback" not in text
    sample = client.get("/sample")
    assert sample.status_code == 503 and sample.json["error"] == "inference_unavailable"
    upload = client.post("/predict", data={"file": (io.BytesIO(PNG_1PX), "a.png")}, headers=JSON)
    assert upload.status_code == 503 and "try again" in upload.json["detail"]
    health = client.get("/health")
    assert health.status_code == 200 and health.json["inference"]["reachable"] is False


def test_with_the_api_down_the_page_still_describes_the_last_known_model(make_app, inference_api):
    """The test is the clock: /metrics stays cached until the test deletes it, as the end of its TTL would."""
    app = make_app(metrics_ttl_s=3600)
    assert app.test_client().get("/").status_code == 200  # sees the API once
    prefix = app.extensions["fmnist"].settings.cache_prefix
    down = make_app(inference_url=f"http://127.0.0.1:{free_port()}", cache_prefix=prefix, metrics_ttl_s=3600)
    client = down.test_client()
    text = client.get("/").get_data(as_text=True)  # /metrics still cached
    assert "Predictions are unavailable" in text and "No sample while" in text and "test accuracy" in text
    down.extensions["fmnist"].cache.delete(f"{prefix}metrics")  # its TTL is over
    text = client.get("/").get_data(as_text=True)
    assert "Predictions are unavailable" in text and "last known" in text
    assert served_version(inference_api) in text and "test accuracy" in text


def test_a_hanging_inference_api_times_out_instead_of_hanging_the_page(make_app):
    """Without a read timeout each of these would wait forever. Each waits at least the 0.5 s read timeout (so the
    silent API was really asked) and ends long before 30 s: a few calls of 0.5 s each, even on a slow, busy machine."""
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        client = make_app(inference_url=f"http://127.0.0.1:{port}", api_read_timeout_s=0.5,
                          api_health_timeout_s=0.5).test_client()
        started = time.monotonic()
        page = client.get("/")
        assert 0.5 <= time.monotonic() - started < 30
        assert page.status_code == 200 and "not answering" in page.get_data(as_text=True)
        started = time.monotonic()
        assert client.get("/sample").status_code == 503
        assert 0.5 <= time.monotonic() - started < 30
        started = time.monotonic()
        health = client.get("/health")
        assert health.status_code == 200 and health.json["inference"]["reachable"] is False
        assert 0.5 <= time.monotonic() - started < 30


def test_page_works_again_as_soon_as_the_api_is_back(make_app, tiny_artifacts, tiny_data_dir, tmp_path):
    port = free_port()
    client = make_app(inference_url=f"http://127.0.0.1:{port}").test_client()
    assert "Predictions are unavailable" in client.get("/").get_data(as_text=True)
    server = start_inference(tiny_artifacts, tiny_data_dir, tmp_path, port=port)
    try:
        page = client.get("/").get_data(as_text=True)
        assert "Predictions are unavailable" not in page and 'class="pixelated"' in page
        assert client.get("/sample").status_code == 200
    finally:
        server.stop()


def test_uploaded_png_gets_a_prediction_as_json_and_as_a_page(make_app, inference_api):
    client = make_app().test_client()
    png = sample_png(inference_api, 0)
    response = client.post("/predict", data={"file": (io.BytesIO(png), "shirt.png")}, headers=JSON)
    assert response.status_code == 200
    prediction = response.json["prediction"]
    assert prediction["label"] in CLASS_NAMES and len(prediction["top_k"]) == 3
    assert prediction["model_version"] == served_version(inference_api)
    assert prediction["label"] in response.json["html"] and "data:image/png;base64," in response.json["html"]
    assert 'data-testid="overlay"' in response.json["html"]

    page = client.post("/predict", data={"file": (io.BytesIO(png), "shirt.png")})
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Your picture" in text and "shirt.png" in text
    assert prediction["label"] in text and 'data-testid="overlay"' in text


def test_jpeg_on_a_light_background_is_accepted(make_app):
    image = Image.new("L", (60, 60), 255)
    image.paste(0, (20, 10, 40, 50))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG")
    response = make_app().test_client().post("/predict", data={"file": (io.BytesIO(buffer.getvalue()), "x.jpg")},
                                              headers=JSON)
    assert response.status_code == 200 and response.json["prediction"]["label"] in CLASS_NAMES


def test_oversize_uploads_get_413_with_a_clear_message(make_app):
    client = make_app(max_upload_bytes=2048).test_client()
    just_over = PNG_1PX + b"\0" * 3000  # under MAX_CONTENT_LENGTH, over the file limit
    response = client.post("/predict", data={"file": (io.BytesIO(just_over), "big.png")}, headers=JSON)
    assert response.status_code == 413 and response.json["error"] == "file_too_large"
    assert "limit" in response.json["detail"]
    huge = PNG_1PX + b"\0" * 200_000  # over MAX_CONTENT_LENGTH: refused before the body is read
    response = client.post("/predict", data={"file": (io.BytesIO(huge), "huge.png")}, headers=JSON)
    assert response.status_code == 413 and response.json["error"] == "file_too_large"
    page = client.post("/predict", data={"file": (io.BytesIO(huge), "huge.png")})
    assert page.status_code == 413 and "too big" in page.get_data(as_text=True)
    assert 'data-testid="upload-message"' in page.get_data(as_text=True)


def test_wrong_missing_and_empty_uploads_get_clear_messages(make_app):
    client = make_app().test_client()
    text_file = client.post("/predict", data={"file": (io.BytesIO(b"hello, not a picture"), "notes.txt")},
                            headers=JSON)
    assert text_file.status_code == 415 and text_file.json["error"] == "unsupported_media_type"
    assert "notes.txt" in text_file.json["detail"] and "PNG" in text_file.json["detail"]
    assert client.post("/predict", data={}, headers=JSON).json["error"] == "missing_file"
    empty = client.post("/predict", data={"file": (io.BytesIO(b""), "empty.png")}, headers=JSON)
    assert empty.status_code == 400 and empty.json["error"] == "empty_file"
    page = client.post("/predict", data={"file": (io.BytesIO(b"hello"), "notes.txt")})
    assert page.status_code == 415 and "is not a picture we can read" in page.get_data(as_text=True)


def test_a_picture_the_api_cannot_decode_passes_the_apis_message_through(make_app):
    broken = b"\x89PNG\r\n\x1a\n" + b"definitely not the rest of a png"
    response = make_app().test_client().post("/predict", data={"file": (io.BytesIO(broken), "broken.png")},
                                             headers=JSON)
    assert 400 <= response.status_code < 500
    assert response.json["error"] and response.json["detail"]


def test_health_reports_both_dependencies(make_app, inference_api):
    body = make_app().test_client().get("/health").json
    assert body["status"] == "ok"
    assert body["inference"] == {"url": inference_api, "reachable": True, "ready": True, "detail": "ready",
                                 "model_version": served_version(inference_api)}
    assert body["redis"] == {"reachable": True, "detail": "ok"}


def test_unknown_pages_and_methods(make_app):
    client = make_app().test_client()
    missing = client.get("/nope")
    assert missing.status_code == 404 and "Back to the classifier" in missing.get_data(as_text=True)
    assert client.get("/nope", headers=JSON).json["error"] == "not_found"
    assert client.get("/predict", headers=JSON).status_code == 405


def test_static_files_and_security_headers(make_app):
    client = make_app().test_client()
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "addEventListener" in script.get_data(as_text=True)
    script.close()
    headers = client.get("/health").headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("secret", ["from-env", None])
def test_factory_reads_settings_from_the_environment(monkeypatch, redis_server, secret, caplog):
    from services.frontend.app import create_app

    monkeypatch.setenv("INFERENCE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CACHE_PREFIX", "factory-test:")
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "4096")
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    if secret:
        monkeypatch.setenv("SECRET_KEY", secret)
    else:
        monkeypatch.delenv("SECRET_KEY", raising=False)
    app = create_app()
    settings = app.extensions["fmnist"].settings
    assert settings.inference_url == "http://127.0.0.1:9" and settings.cache_prefix == "factory-test:"
    assert app.config["MAX_CONTENT_LENGTH"] == 4096 + 64 * 1024
    if secret:
        assert app.config["SECRET_KEY"] == "from-env"
    else:
        assert len(app.config["SECRET_KEY"]) == 64 and create_app().config["SECRET_KEY"] != app.config["SECRET_KEY"]
        assert any("SECRET_KEY is not set" in r.getMessage() for r in caplog.records)
    assert {rule.rule for rule in app.url_map.iter_rules()} >= {"/", "/sample", "/predict", "/health"}
