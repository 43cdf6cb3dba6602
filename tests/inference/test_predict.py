"""Predictions through the real server with the default model agree with the model run offline."""

import numpy as np
import pytest
import requests
from PIL import Image

from tests.inference.helpers import encode, files, offline_probabilities


@pytest.fixture(scope="module")
def offline(default_model_dir, real_subset):
    images, _ = real_subset
    return offline_probabilities(default_model_dir, images)


def test_known_images_get_their_true_labels(default_server, real_subset, offline):
    """For each class, the image the model is surest about is served with its true label and id."""
    images, labels = real_subset
    probabilities, version = offline
    for class_id in range(10):
        candidates = np.flatnonzero(labels == class_id)
        best = candidates[np.argmax(probabilities[candidates, class_id])]
        result = requests.post(f"{default_server}/predict", json={"pixels": images[best].tolist()}, timeout=10).json()
        assert result["class_id"] == class_id
        assert result["model_version"] == version


def test_accuracy_through_the_api_equals_offline_accuracy(default_server, real_subset, offline):
    images, labels = real_subset
    probabilities, _ = offline
    served = []
    for start in range(0, len(images), 100):
        body = {"instances": images[start:start + 100].tolist()}
        response = requests.post(f"{default_server}/predict?top_k=10", json=body, timeout=30)
        assert response.status_code == 200, response.text
        served.extend(response.json()["predictions"])
    predicted = np.array([result["class_id"] for result in served])
    assert (predicted == probabilities.argmax(1)).all()
    offline_accuracy = float((probabilities.argmax(1) == labels).mean())
    assert float((predicted == labels).mean()) == offline_accuracy
    assert offline_accuracy >= 0.85  # the default model is a real one, not a stub
    by_class = [{item["class_id"]: item["probability"] for item in result["top_k"]} for result in served]
    served_probabilities = np.array([[row[c] for c in range(10)] for row in by_class])
    np.testing.assert_allclose(served_probabilities, probabilities, atol=1e-5)


def test_png_uploads_give_the_same_classes_as_their_pixels(default_server, real_subset, offline):
    images, _ = real_subset
    probabilities, _ = offline
    for start in range(0, 120, 60):
        uploads = [encode(image) for image in images[start:start + 60]]
        response = requests.post(f"{default_server}/predict", files=files(uploads), timeout=30)
        assert response.status_code == 200, response.text
        predicted = [result["class_id"] for result in response.json()["predictions"]]
        assert predicted == probabilities[start:start + 60].argmax(1).tolist()


@pytest.mark.parametrize("fmt,mode", [("PNG", "RGB"), ("GIF", "L"), ("BMP", "RGB"), ("WEBP", "L"), ("JPEG", "L")])
def test_every_supported_format_is_accepted(default_server, real_subset, offline, fmt, mode):
    images, _ = real_subset
    probabilities, _ = offline
    index = int(np.argmax(probabilities.max(1)))  # the surest image survives even lossy JPEG
    response = requests.post(f"{default_server}/predict", files=files([encode(images[index], fmt, mode)]), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["class_id"] == int(probabilities[index].argmax())


def test_top_k_is_ordered_and_probabilities_sum_to_one(default_server, real_subset):
    images, _ = real_subset
    for k in (1, 3, 10):
        result = requests.post(f"{default_server}/predict?top_k={k}", json={"pixels": images[0].tolist()},
                               timeout=10).json()
        probabilities = [item["probability"] for item in result["top_k"]]
        assert len(probabilities) == k
        assert probabilities == sorted(probabilities, reverse=True)
        assert result["class_id"] == result["top_k"][0]["class_id"]
        assert result["confidence"] == probabilities[0]
        assert {item["label"] for item in result["top_k"]} <= {
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
        if k == 10:
            assert abs(sum(probabilities) - 1) < 1e-4
            assert sorted(item["class_id"] for item in result["top_k"]) == list(range(10))


def test_a_picture_on_a_white_background_is_inverted(default_server, real_subset, offline):
    """A product photo (dark object on white, larger, not square) is classified like the original image."""
    images, _ = real_subset
    probabilities, _ = offline
    index = int(np.argmax(probabilities.max(1)))
    photo = Image.fromarray(255 - images[index]).resize((112, 112), Image.Resampling.NEAREST)
    canvas = Image.new("L", (112, 160), 255)
    canvas.paste(photo, (0, 24))  # a tall picture with margins: the garment is found, cropped and centred
    result = requests.post(f"{default_server}/predict", files=files([encode(np.asarray(canvas))]), timeout=10).json()
    assert result["class_id"] == int(probabilities[index].argmax())


def test_batch_answers_keep_input_order_and_single_answers_are_objects(default_server, real_subset, offline):
    images, _ = real_subset
    probabilities, version = offline
    order = [5, 0, 3]
    batch = requests.post(f"{default_server}/predict", json={"instances": images[order].tolist()}, timeout=10).json()
    assert batch["model_version"] == version
    assert [p["class_id"] for p in batch["predictions"]] == probabilities[order].argmax(1).tolist()
    single = requests.post(f"{default_server}/predict", files=files([encode(images[5])]), timeout=10).json()
    assert "predictions" not in single and single["class_id"] == int(probabilities[5].argmax())


def test_a_picture_with_two_garments_is_answered_with_a_warning(default_server, real_subset):
    images, _ = real_subset
    canvas = np.full((300, 700), 245, dtype=np.uint8)
    canvas[20:280, 20:280] = 255 - np.asarray(Image.fromarray(images[0]).resize((260, 260)))
    canvas[60:260, 450:650] = 255 - np.asarray(Image.fromarray(images[1]).resize((200, 200)))
    answer = requests.post(f"{default_server}/predict", files=files([encode(canvas)]), timeout=10)
    assert answer.status_code == 200
    assert [warning["code"] for warning in answer.json()["warnings"]] == ["several_objects"]
    assert "largest" in answer.json()["warnings"][0]["detail"]
    explained = requests.post(f"{default_server}/explain", files=files([encode(canvas)]), timeout=30).json()
    assert explained["warnings"] == answer.json()["warnings"] and explained["class_id"] == answer.json()["class_id"]
    plain = requests.post(f"{default_server}/predict", files=files([encode(images[0])]), timeout=10).json()
    assert plain["warnings"] == []
