"""End to end: Redis, the inference API and the web page as real processes, serving a model the trainer made.

Drives the page the way its script does (the page, a random sample as JSON, an upload) and the API the way a
curl user does (PNG, JSON pixels, a batch, metrics, samples, health, readiness), then stops everything and checks
that no process is left.
"""

import base64
import io
import json

import numpy as np
import pytest
import requests
from PIL import Image

from shared.classes import CLASS_NAMES
from shared.data import load_split
from tests.deploy.procfs import assert_all_gone
from tests.e2e.stack import wait_for_samples

JSON = {"Accept": "application/json"}


def png_bytes(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def version(tiny_artifacts) -> str:
    return json.loads((tiny_artifacts / "latest.json").read_text())["model_version"]


@pytest.fixture(scope="module")
def test_images(tiny_data_dir):
    """The images the API serves as samples, read here straight from the IDX files."""
    return load_split(tiny_data_dir, train=False, download=False)


def assert_result(result: dict, version: str, top_k: int = 3) -> None:
    assert 0 <= result["class_id"] < 10 and result["label"] == CLASS_NAMES[result["class_id"]]
    assert result["model_version"] == version
    assert len(result["top_k"]) == top_k and result["top_k"][0]["class_id"] == result["class_id"]
    assert result["top_k"][0]["probability"] == pytest.approx(result["confidence"])
    probabilities = [entry["probability"] for entry in result["top_k"]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0 + 1e-6


def test_api_health_readiness_and_metrics(stack, version, tiny_artifacts):
    api = stack.api
    assert requests.get(f"{api}/health", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{api}/ready", timeout=5).json() == {"status": "ready", "model_version": version}
    metrics = requests.get(f"{api}/metrics", timeout=5).json()
    assert metrics["model"]["version"] == version and metrics["model"]["source"] == "artifacts"
    assert metrics["training"] == json.loads((tiny_artifacts / "metrics.json").read_text())
    assert metrics["reload"]["last_error"] is None
    assert wait_for_samples(api) == 200
    prometheus = requests.get(f"{api}/metrics/prometheus", timeout=5)
    assert prometheus.status_code == 200 and "# TYPE" in prometheus.text


def test_api_predicts_png_pixels_and_batches_consistently(stack, version, test_images):
    api = stack.api
    pixels = [test_images.images[i].tolist() for i in range(4)]
    by_pixels = [requests.post(f"{api}/predict", json={"pixels": p}, timeout=10).json() for p in pixels]
    for result in by_pixels:
        assert_result(result, version)
    # A PNG of the same pixels gives the same answer: one preprocessing for every input form.
    by_png = requests.post(f"{api}/predict?top_k=5", files={"file": ("x.png", png_bytes(pixels[0]), "image/png")},
                           timeout=10).json()
    assert_result(by_png, version, top_k=5)
    assert by_png["class_id"] == by_pixels[0]["class_id"]
    assert by_png["confidence"] == pytest.approx(by_pixels[0]["confidence"], abs=1e-4)
    batch = requests.post(f"{api}/predict", json={"instances": pixels}, timeout=10).json()
    assert batch["model_version"] == version
    assert [r["class_id"] for r in batch["predictions"]] == [r["class_id"] for r in by_pixels], "input order"
    files = [("file", (f"{i}.png", png_bytes(p), "image/png")) for i, p in enumerate(pixels[:2])]
    multi = requests.post(f"{api}/predict", files=files, timeout=10).json()
    assert [r["class_id"] for r in multi["predictions"]] == [r["class_id"] for r in by_pixels[:2]]
    # The model learned the synthetic classes: most of these test images are right.
    correct = sum(r["class_id"] == int(test_images.labels[i]) for i, r in enumerate(by_pixels))
    assert correct >= 3


def test_api_refuses_bad_input_with_json_errors_and_keeps_serving(stack):
    api = stack.api
    for response in (
        requests.post(f"{api}/predict", files={"file": ("x.png", b"not a picture", "image/png")}, timeout=10),
        requests.post(f"{api}/predict", json={"pixels": [[0] * 27] * 28}, timeout=10),
        requests.post(f"{api}/predict?top_k=11", json={"pixels": [[0] * 28] * 28}, timeout=10),
        requests.get(f"{api}/samples/100000", timeout=10),
    ):
        assert 400 <= response.status_code < 500, response.text
        body = response.json()
        assert set(body) == {"error", "detail"} and body["detail"]
    assert requests.get(f"{api}/ready", timeout=5).status_code == 200


def test_api_samples_are_the_test_images(stack, test_images):
    api = stack.api
    wait_for_samples(api)
    sample = requests.get(f"{api}/samples/7", timeout=5).json()
    assert sample["index"] == 7 and sample["class_id"] == int(test_images.labels[7])
    assert sample["label"] == CLASS_NAMES[sample["class_id"]]
    assert sample["pixels"] == test_images.images[7].tolist()
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(sample["image_png_base64"]))))
    assert decoded.tolist() == sample["pixels"]
    randoms = requests.get(f"{api}/samples/random?count=5", timeout=5).json()["samples"]
    assert len(randoms) == 5 and len({s["index"] for s in randoms}) == 5


def test_page_renders_with_the_served_model(stack, version):
    page = requests.get(f"{stack.page}/", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert version in page.text
    health = requests.get(f"{stack.page}/health", timeout=5).json()
    assert health["inference"]["ready"] and health["redis"]["reachable"]


def test_page_random_sample_json_is_cached_in_redis(stack, version, test_images):
    wait_for_samples(stack.api)
    first = requests.get(f"{stack.page}/sample", headers=JSON, timeout=10)
    assert first.status_code == 200
    record = first.json()
    assert record["true_class_id"] == int(test_images.labels[record["index"]])
    assert record["prediction"]["model_version"] == version and record["html"]
    again = requests.get(f"{stack.page}/sample?index={record['index']}", headers=JSON, timeout=10)
    assert again.headers["X-Cache"] == "hit" and again.json()["prediction"] == record["prediction"]


def test_page_upload_predicts_like_the_api(stack, version, test_images):
    png = png_bytes(test_images.images[3].tolist())
    response = requests.post(f"{stack.page}/predict", files={"file": ("shoe.png", png, "image/png")},
                             headers=JSON, timeout=10)
    assert response.status_code == 200
    direct = requests.post(f"{stack.api}/predict", files={"file": ("shoe.png", png, "image/png")}, timeout=10)
    assert response.json()["prediction"]["class_id"] == direct.json()["class_id"]
    assert response.json()["prediction"]["model_version"] == version
    refused = requests.post(f"{stack.page}/predict", files={"file": ("a.txt", b"hello", "text/plain")},
                            headers=JSON, timeout=10)
    assert refused.status_code == 415 and refused.json()["error"] == "unsupported_media_type"


def test_stopping_leaves_nothing_running(stack):
    """Last in this module: every process (gunicorn workers included) is gone after stopping."""
    groups = stack.process_groups()
    stack.stop()
    assert_all_gone(groups)
