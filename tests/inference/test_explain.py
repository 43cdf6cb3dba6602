"""POST /explain against the real server with the default model: the contract, bad input, and faithfulness."""

import base64
import io

import numpy as np
import pytest
import requests
from PIL import Image

from bench.explain import faithfulness
from tests.inference.helpers import encode, files
from tests.inference.test_bad_input import CASES, GOOD, _wait_for_samples


def explain(url: str, pixels: np.ndarray, **params) -> dict:
    response = requests.post(f"{url}/explain", params=params, json={"pixels": pixels.tolist()}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_explain_answers_the_prediction_and_a_map_of_the_pixels_it_rests_on(default_server, real_subset):
    images, _ = real_subset
    pixels = images[0]
    answer = explain(default_server, pixels, top_k=5)
    predicted = requests.post(f"{default_server}/predict?top_k=5", json={"pixels": pixels.tolist()}, timeout=10).json()
    assert {key: answer[key] for key in ("class_id", "label", "model_version")} == {
        key: predicted[key] for key in ("class_id", "label", "model_version")}
    assert [item["class_id"] for item in answer["top_k"]] == [item["class_id"] for item in predicted["top_k"]]
    np.testing.assert_allclose([item["probability"] for item in answer["top_k"]],
                               [item["probability"] for item in predicted["top_k"]], atol=1e-6)
    assert answer["confidence"] == answer["top_k"][0]["probability"]

    saliency = np.array(answer["saliency"])
    assert saliency.shape == (28, 28) and saliency.min() >= 0 and saliency.max() == 1
    assert (saliency[pixels == 0] == 0).all()  # deleting a black pixel changes nothing
    assert "occlusion" in answer["method"]

    overlay = Image.open(io.BytesIO(base64.b64decode(answer["overlay_png_base64"])))
    assert overlay.format == "PNG" and overlay.mode == "RGB" and overlay.size == (280, 280)
    shown = np.asarray(overlay)
    assert (shown[::10, ::10][pixels == 0] == 0).all()  # the background stays black: nothing there to explain
    hottest = np.unravel_index(saliency.argmax(), saliency.shape)
    assert shown[hottest[0] * 10 + 5, hottest[1] * 10 + 5, 0] > 200  # the most salient pixel is painted hot


def test_an_uploaded_picture_is_explained_like_its_pixels(default_server, real_subset):
    images, _ = real_subset
    from_pixels = explain(default_server, images[3])
    response = requests.post(f"{default_server}/explain", files=files([encode(images[3])]), timeout=30)
    assert response.status_code == 200, response.text
    from_file = response.json()
    assert from_file["class_id"] == from_pixels["class_id"] and from_file["saliency"] == from_pixels["saliency"]
    assert len(from_file["top_k"]) == 3


def test_a_black_image_gets_a_prediction_and_an_empty_map(default_server):
    answer = explain(default_server, np.zeros((28, 28), dtype=np.uint8))
    assert answer["label"] and np.array(answer["saliency"]).max() == 0


@pytest.mark.parametrize("case", CASES)
def test_bad_explain_input_gets_the_same_4xx_as_predict(default_server, case):
    make_kwargs, status, error = CASES[case]
    response = requests.post(f"{default_server}/explain", timeout=30, **make_kwargs())
    assert response.status_code == status, response.text
    assert response.json()["error"] == error and len(response.json()["detail"]) > 10


@pytest.mark.parametrize("kwargs", [
    {"json": {"instances": [GOOD]}},
    {"json": {"instances": [GOOD, GOOD]}},
    {"files": files([encode(np.zeros((28, 28), dtype=np.uint8))] * 2)},
], ids=["one_instance", "two_instances", "two_files"])
def test_explain_refuses_batches(default_server, kwargs):
    response = requests.post(f"{default_server}/explain", timeout=30, **kwargs)
    assert response.status_code == 422
    assert response.json()["error"] == "single_image_only" and "one `file`" in response.json()["detail"]


@pytest.mark.parametrize("query", ["top_k=0", "top_k=11", "top_k=x"])
def test_explain_checks_top_k_like_predict(default_server, query):
    response = requests.post(f"{default_server}/explain?{query}", json={"pixels": GOOD}, timeout=10)
    assert response.status_code == 422 and response.json()["error"] == "invalid_top_k"


def test_openapi_documents_explain(default_server):
    schema = requests.get(f"{default_server}/openapi.json", timeout=5).json()
    operation = schema["paths"]["/explain"]["post"]
    assert {"multipart/form-data", "application/json"} <= set(operation["requestBody"]["content"])
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Explanation")
    fields = schema["components"]["schemas"]["Explanation"]["properties"]
    assert {"class_id", "label", "confidence", "top_k", "model_version", "method", "saliency",
            "overlay_png_base64"} <= set(fields)
    assert {"400", "413", "415", "422", "503"} <= set(operation["responses"])


def test_deleting_the_most_salient_pixels_hurts_at_least_twice_as_much_as_random_ones(default_server, real_subset):
    """The faithfulness goal of issue 8, through the real endpoints, on 100 real test images (bench/explain.py
    measures the same on 200)."""
    images, _ = real_subset
    result = faithfulness(default_server, images[:100])
    assert result["images"] == 100
    assert result["ratio"] >= 2, result


def test_a_sample_comes_with_its_prediction_and_explanation_in_one_call(default_server):
    _wait_for_samples(default_server)
    sample = requests.get(f"{default_server}/samples/42?explain=true&top_k=4", timeout=30).json()
    direct = requests.post(f"{default_server}/explain?top_k=4", json={"pixels": sample["pixels"]}, timeout=30).json()
    assert sample["prediction"] == direct  # the same answer as posting its pixels back, without the round trip
    assert len(sample["prediction"]["top_k"]) == 4
    assert "prediction" not in requests.get(f"{default_server}/samples/42", timeout=10).json()
    randoms = requests.get(f"{default_server}/samples/random?count=2&explain=true", timeout=60).json()["samples"]
    assert [len(item["prediction"]["top_k"]) for item in randoms] == [3, 3]
    too_many = requests.get(f"{default_server}/samples/random?count=9&explain=true", timeout=10)
    assert too_many.status_code == 422 and too_many.json()["error"] == "too_many_to_explain"
