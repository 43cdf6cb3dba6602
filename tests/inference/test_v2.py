"""The Open Inference Protocol (KServe V2) through Triton's own client, ``tritonclient[http]``, against the real
server: health, metadata, inference as JSON and as binary tensors, and the same answers as /predict."""

import re
import subprocess
import sys

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from shared.artifacts import read_manifest
from shared.classes import CLASS_NAMES
from tests.processes import REPO_ROOT

MODEL = "fashion-mnist"


@pytest.fixture(scope="module")
def client(default_server):
    with triton.InferenceServerClient(default_server.removeprefix("http://"), network_timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def version(default_model_dir) -> str:
    return read_manifest(default_model_dir).model_version


def predict(url: str, images: np.ndarray) -> list[dict]:
    """The own API's answers (all 10 probabilities) for these images, as JSON ``instances``."""
    answer = requests.post(f"{url}/predict?top_k=10", json={"instances": images.tolist()}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]


def probabilities_of(predictions: list[dict]) -> np.ndarray:
    return np.array([[next(c["probability"] for c in p["top_k"] if c["class_id"] == k) for k in range(10)]
                     for p in predictions])


def infer(client, pixels: np.ndarray, datatype: str, binary: bool, outputs=("probabilities", "label"), **kwargs):
    tensor = triton.InferInput("pixels", list(pixels.shape), datatype)
    tensor.set_data_from_numpy(pixels, binary_data=binary)
    wanted = [triton.InferRequestedOutput(name, binary_data=binary) for name in outputs]
    return client.infer(MODEL, [tensor], outputs=wanted, **kwargs)


def test_health_and_server_metadata(client):
    assert client.is_server_live() and client.is_server_ready()
    metadata = client.get_server_metadata()
    assert metadata["name"] == "fashion-mnist-inference" and metadata["version"]
    assert "binary_tensor_data" in metadata["extensions"] and "classification" in metadata["extensions"]


def test_model_metadata_names_the_tensors_and_the_served_version(client, version):
    metadata = client.get_model_metadata(MODEL)
    assert metadata == client.get_model_metadata(MODEL, model_version=version)
    assert metadata["name"] == MODEL and metadata["versions"] == [version]
    assert metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [{"name": "pixels", "datatype": "UINT8", "shape": [-1, 28, 28]}]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
                                   {"name": "label", "datatype": "BYTES", "shape": [-1]}]
    assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, model_version=version)
    assert not client.is_model_ready(MODEL, model_version="20200101-000000-00000000")
    assert not client.is_model_ready("mnist")
    with pytest.raises(InferenceServerException, match="unknown model 'mnist'") as raised:
        client.get_model_metadata("mnist")
    assert raised.value.status() == "404"


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("datatype,shape", [("UINT8", (28, 28)), ("FP32", (1, 28, 28))])
def test_infer_answers_as_predict_does(client, default_server, real_subset, version, binary, datatype, shape):
    images = real_subset[0][:20]
    pixels = images.reshape(len(images), *shape).astype(np.float32 if datatype == "FP32" else np.uint8)
    result = infer(client, pixels, datatype, binary)
    expected = predict(default_server, images)
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32 and probabilities.shape == (20, 10)
    np.testing.assert_allclose(probabilities, probabilities_of(expected), rtol=1e-6, atol=1e-7)
    labels = [label.decode() if isinstance(label, bytes) else label for label in result.as_numpy("label")]
    assert labels == [p["label"] for p in expected]
    assert result.get_response()["model_version"] == version


def test_fp32_pixels_are_rounded_as_predict_rounds_them(client, default_server, real_subset):
    images = real_subset[0][20:24].astype(np.float32)
    images[:, 10:18, 10:18] = np.clip(images[:, 10:18, 10:18] + 0.5, 0, 255)  # halves: round half to even
    images[:, 5, :] = np.clip(images[:, 5, :] - 0.3, 0, 255)
    result = infer(client, images, "FP32", binary=True)
    answer = requests.post(f"{default_server}/predict?top_k=10", json={"instances": images.tolist()}, timeout=30)
    np.testing.assert_allclose(result.as_numpy("probabilities"), probabilities_of(answer.json()["predictions"]),
                               rtol=1e-6, atol=1e-7)


def test_accuracy_over_the_10000_test_images_equals_predict(client, default_server, real_test_split):
    """Every test image through V2 binary tensors and through /predict: the same class for each, image by image."""
    images, labels = real_test_split.images.numpy(), real_test_split.labels.numpy()
    served, expected = [], []
    for start in range(0, len(images), 250):
        batch = images[start:start + 250]
        served.append(infer(client, batch, "UINT8", binary=True).as_numpy("probabilities"))
        expected.append(probabilities_of(predict(default_server, batch)))
    served, expected = np.concatenate(served), np.concatenate(expected)
    assert (served.argmax(1) == expected.argmax(1)).all()
    np.testing.assert_allclose(served, expected, rtol=1e-6, atol=1e-7)
    accuracy = float((served.argmax(1) == labels).mean())
    assert accuracy == float((expected.argmax(1) == labels).mean()) and accuracy >= 0.85


def test_outputs_by_name_classification_and_request_id(client, default_server, real_subset):
    images = real_subset[0][:3]
    only_label = infer(client, images, "UINT8", binary=False, outputs=["label"], request_id="req-7")
    assert [o["name"] for o in only_label.get_response()["outputs"]] == ["label"]
    assert only_label.get_response()["id"] == "req-7" and only_label.as_numpy("probabilities") is None
    tensor = triton.InferInput("pixels", [3, 28, 28], "UINT8")
    tensor.set_data_from_numpy(images)
    top = client.infer(MODEL, [tensor], outputs=[triton.InferRequestedOutput("probabilities", class_count=3)])
    classes = top.as_numpy("probabilities")
    assert classes.shape == (3, 3)
    for row, prediction in zip(classes, predict(default_server, images), strict=True):
        value, class_id, label = row[0].decode().split(":")
        assert (int(class_id), label) == (prediction["class_id"], CLASS_NAMES[prediction["class_id"]])
        assert abs(float(value) - prediction["confidence"]) < 1e-6
    everything = client.infer(MODEL, [tensor])  # no outputs named: all of them, binary (tritonclient's default)
    assert [o["name"] for o in everything.get_response()["outputs"]] == ["probabilities", "label"]
    assert all("binary_data_size" in o["parameters"] for o in everything.get_response()["outputs"])


def test_a_version_is_answered_only_by_the_version_served(client, real_subset, version):
    images = real_subset[0][:2]
    answer = infer(client, images, "UINT8", binary=True, model_version=version)
    assert answer.get_response()["model_version"] == version
    with pytest.raises(InferenceServerException, match="not served here") as raised:
        infer(client, images, "UINT8", binary=True, model_version="20200101-000000-00000000")
    assert raised.value.status() == "404"


def test_v2_requests_are_in_the_prometheus_metrics(client, default_server, real_subset):
    infer(client, real_subset[0][:1], "UINT8", binary=True)
    assert client.is_server_ready()
    requests.post(f"{default_server}/v2/models/{MODEL}/infer", json={"inputs": []}, timeout=10)
    text = requests.get(f"{default_server}/metrics/prometheus", timeout=5).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    statuses = {(s.labels["route"], s.labels["status"]) for s in families["inference_http_requests"].samples
                if s.name == "inference_http_requests_total"}
    assert {("/v2/models/{model_name}/infer", "200"), ("/v2/models/{model_name}/infer", "400")} <= statuses
    assert ("/v2/health/ready", "200") in statuses
    assert "invalid_request" in {s.labels["error"] for s in families["inference_errors"].samples}


def test_docs_list_the_v2_routes_under_their_own_tag(default_server):
    schema = requests.get(f"{default_server}/openapi.json", timeout=10).json()
    v2 = {path: item for path, item in schema["paths"].items() if path.startswith("/v2")}
    assert {"/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/{model_name}", "/v2/models/{model_name}/ready",
            "/v2/models/{model_name}/infer", "/v2/models/{model_name}/versions/{model_version}/infer"} <= set(v2)
    assert {tag for item in v2.values() for operation in item.values() for tag in operation["tags"]} == {
        "Open Inference Protocol (KServe V2)"}
    body = v2["/v2/models/{model_name}/infer"]["post"]["requestBody"]["content"]
    assert "$ref" not in str(body["application/json"]["schema"])  # written out in place, nothing dangles
    assert body["application/json"]["schema"]["properties"]["inputs"]["items"]["required"] == [
        "name", "shape", "datatype"]


@pytest.fixture(scope="module")
def keyed_server_without_model(start_server, tmp_path_factory):
    """API_KEYS set and no model anywhere: what a V2 client sees before the first publication."""
    empty = tmp_path_factory.mktemp("v2-empty")
    with start_server(ARTIFACTS_DIR=empty, DEFAULT_MODEL_DIR=empty, DATA_DIR=empty, API_KEYS="key-one,key-two") as url:
        yield url


def test_infer_needs_an_api_key_and_answers_in_the_protocol_shape(keyed_server_without_model):
    url = f"{keyed_server_without_model}/v2/models/{MODEL}/infer"
    body = {"inputs": [{"name": "pixels", "shape": [1, 28, 28], "datatype": "UINT8", "data": [0] * 784}]}
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        refused = requests.post(url, json=body, headers=headers, timeout=10)
        assert refused.status_code == 401 and list(refused.json()) == ["error"], refused.text
        assert "API key" in refused.json()["error"] and refused.headers["WWW-Authenticate"].startswith("Bearer")
    tensor = triton.InferInput("pixels", [1, 28, 28], "UINT8")
    tensor.set_data_from_numpy(np.zeros((1, 28, 28), np.uint8))
    with (triton.InferenceServerClient(keyed_server_without_model.removeprefix("http://")) as client,
          pytest.raises(InferenceServerException, match="API key") as raised):
        client.infer(MODEL, [tensor])
    assert raised.value.status() == "401"
    keyed = requests.post(url, json=body, headers={"Authorization": "Bearer key-two"}, timeout=10)
    assert keyed.status_code == 503 and list(keyed.json()) == ["error"] and "no model" in keyed.json()["error"]


def test_health_and_metadata_stay_open_and_say_not_ready(keyed_server_without_model):
    url = keyed_server_without_model
    assert requests.get(f"{url}/v2/health/live", timeout=5).json() == {"live": True}
    for path in ("/v2/health/ready", f"/v2/models/{MODEL}/ready"):
        answer = requests.get(f"{url}{path}", timeout=5)
        assert answer.status_code == 400 and answer.json()["ready"] is False and "no model" in answer.json()["error"]
    metadata = requests.get(f"{url}/v2/models/{MODEL}", timeout=5)
    assert metadata.status_code == 503 and list(metadata.json()) == ["error"]
    assert requests.get(f"{url}/v2", timeout=5).status_code == 200


def test_the_documented_tritonclient_example_works(default_server, version, tmp_path):
    page = (REPO_ROOT / "docs" / "v2-protocol.md").read_text()
    block = re.search(r"<!-- readme-tritonclient.*?-->\n```python\n(.*?)```\n<!-- /readme-tritonclient -->", page,
                      re.S)
    assert block, "docs/v2-protocol.md lost its tritonclient example"
    code = block.group(1).replace("127.0.0.1:8000", default_server.removeprefix("http://"))
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"True ['{version}']" in result.stdout and "b'" in result.stdout  # ready, the version, BYTES labels
