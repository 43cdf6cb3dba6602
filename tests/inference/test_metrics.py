"""/metrics (JSON), /metrics/prometheus, /docs and micro-batching, against the default-model server."""

import base64
import io
import json
import socket

import numpy as np
import requests
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from shared.artifacts import read_manifest
from tests.inference.test_bad_input import _wait_for_samples
from tests.reliability.clients import JSON_BODY, send_only, status_of
from tests.reliability.conftest import count, prometheus
from tests.waiting import wait_until


def _families(url: str) -> dict:
    text = requests.get(f"{url}/metrics/prometheus", timeout=5).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def _batch_histogram(url: str) -> tuple[float, float]:
    samples = {s.name: s.value for s in _families(url)["inference_batch_size"].samples if not s.labels}
    return samples["inference_batch_size_count"], samples["inference_batch_size_sum"]


def test_metrics_json_describes_the_serving_model(default_server, default_model_dir):
    _wait_for_samples(default_server)
    metrics = requests.get(f"{default_server}/metrics", timeout=5).json()
    published = read_manifest(default_model_dir)
    assert metrics["model"]["version"] == published.model_version
    assert metrics["model"]["source"] == "default" and metrics["model"]["device"] == "cpu"
    assert metrics["model"]["published_at"] == published.published_at and metrics["model"]["loaded_at"]
    assert metrics["training"] == json.loads(published.metrics_path.read_text())
    assert metrics["model"]["checkpoint"] == published.checkpoint_path.relative_to(default_model_dir).as_posix()
    assert str(default_model_dir) not in json.dumps(metrics), "no server path in answers"
    assert metrics["reload"] == {"last_error": None, "rejected": [], "graph_disagreements": 0}
    assert metrics["model"]["graph_disagreement"] is None
    assert metrics["samples"] == {"available": 10000}


def test_prometheus_exposition_parses_and_has_latency_histograms(default_server):
    requests.post(f"{default_server}/predict", json={"pixels": [[0] * 28] * 28}, timeout=5)
    requests.post(f"{default_server}/predict", json={"pixels": [[0] * 27]}, timeout=5)
    families = _families(default_server)
    latency = families["inference_http_request_duration_seconds"]
    assert latency.type == "histogram"
    buckets = [s for s in latency.samples if s.name.endswith("_bucket")
               and s.labels["route"] == "/predict" and s.labels["method"] == "POST"]
    assert buckets and buckets[-1].labels["le"] == "+Inf" and buckets[-1].value >= 2
    statuses = {(s.labels["route"], s.labels["status"]) for s in families["inference_http_requests"].samples
                if s.name == "inference_http_requests_total"}
    assert {("/predict", "200"), ("/predict", "422")} <= statuses
    errors = {s.labels["error"] for s in families["inference_errors"].samples}
    assert "invalid_pixels" in errors
    assert families["inference_batch_size"].type == "histogram"
    info = [s for s in families["inference_model_info"].samples if s.value == 1]
    assert len(info) == 1 and info[0].labels["source"] == "default"


def _held_predictions(url: str, count_: int) -> list[socket.socket]:
    """``count_`` /predict requests, each sent but for the last byte of its body: they can then complete at once."""
    head = (f"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nConnection: close\r\n"
            f"Content-Length: {len(JSON_BODY)}\r\n\r\n").encode()
    return [send_only(url, head + JSON_BODY[:-1]) for _ in range(count_)]


def _answer(sock: socket.socket) -> bytes:
    answer = b""
    sock.settimeout(60)
    with sock:
        while chunk := sock.recv(65536):  # the server closes after answering (Connection: close)
            answer += chunk
    return answer


def test_concurrent_requests_are_grouped_into_batches(default_server):
    """Requests in flight together share forward passes. Their bodies are completed at the same moment (each was
    sent but for its last byte), so how fast this machine runs the clients cannot spread them out: the server
    finds them all waiting, and only its own work decides how they batch."""
    count_before, sum_before = _batch_histogram(default_server)
    rounds, together = 4, 32
    for _ in range(rounds):
        held = _held_predictions(default_server, together)
        wait_until(lambda: count(prometheus(default_server), "inference_http_requests_in_progress") >= together + 1,
                   "every request to be inside the server")
        for sock in held:
            sock.sendall(JSON_BODY[-1:])
        assert [status_of(_answer(sock)) for sock in held] == [200] * together
    count_after, sum_after = _batch_histogram(default_server)
    images_run, forward_passes = sum_after - sum_before, count_after - count_before
    assert images_run == rounds * together
    assert forward_passes < images_run * 0.9, f"{forward_passes} forward passes for {images_run} requests"


def test_samples_are_real_test_images(default_server, real_test_split):
    _wait_for_samples(default_server)
    sample = requests.get(f"{default_server}/samples/123", timeout=5).json()
    assert sample["index"] == 123 and sample["class_id"] == int(real_test_split.labels[123])
    assert sample["pixels"] == real_test_split.images[123].tolist()
    png = Image.open(io.BytesIO(base64.b64decode(sample["image_png_base64"])))
    assert png.size == (28, 28) and (np.asarray(png) == real_test_split.images[123].numpy()).all()
    batch = requests.get(f"{default_server}/samples/random?count=5", timeout=5).json()["samples"]
    assert len(batch) == 5 and len({s["index"] for s in batch}) == 5
    for item in batch:
        assert item["label"] and len(item["pixels"]) == 28


def test_openapi_documents_every_endpoint_and_both_predict_bodies(default_server):
    schema = requests.get(f"{default_server}/openapi.json", timeout=5).json()
    assert {"/predict", "/samples/random", "/samples/{index}", "/health", "/ready", "/metrics",
            "/metrics/prometheus"} <= set(schema["paths"])
    content = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(content)
    # What is really accepted: 1 to MAX_FILES non-empty files; exactly one of pixels or instances, never null.
    upload = content["multipart/form-data"]["schema"]
    assert upload["required"] == ["file"]
    assert upload["properties"]["file"]["minItems"] == 1 and upload["properties"]["file"]["maxItems"] == 64
    assert upload["properties"]["file"]["items"] == {"type": "string", "format": "binary", "minLength": 1}
    body = content["application/json"]["schema"]
    assert body["oneOf"] == [{"required": ["pixels"]}, {"required": ["instances"]}]
    assert body["additionalProperties"] is False and "anyOf" not in body["properties"]["pixels"]
    assert body["properties"]["instances"]["maxItems"] == 256
    explain = schema["paths"]["/explain"]["post"]["requestBody"]["content"]
    assert explain["multipart/form-data"]["schema"]["properties"]["file"]["minLength"] == 1
    assert requests.get(f"{default_server}/docs", timeout=5).status_code == 200
