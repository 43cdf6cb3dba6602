"""The plain functions and the app in-process (FastAPI TestClient, lifespan included): no server needed."""

import io
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from services.inference.app.config import Settings
from services.inference.app.errors import ApiError
from services.inference.app.images import decode_image, to_fashion_mnist
from services.inference.app.main import create_app
from services.inference.app.predict import results, top_k_result


def test_top_k_result_orders_classes_and_names_them():
    probabilities = np.array([0.05, 0.6, 0.0, 0.3, 0.05, 0, 0, 0, 0, 0], dtype=np.float32)
    result = top_k_result(probabilities, 3, "v1")
    assert result["class_id"] == 1 and result["label"] == "Trouser" and result["model_version"] == "v1"
    assert [item["class_id"] for item in result["top_k"]] == [1, 3, 0]  # ties keep class order
    assert result["confidence"] == pytest.approx(0.6)
    assert len(results(np.stack([probabilities] * 4), 1, "v1")) == 4


def test_light_background_is_inverted_and_dark_is_kept():
    dark = np.zeros((28, 28), dtype=np.uint8)
    dark[8:20, 8:20] = 200
    assert (to_fashion_mnist(Image.fromarray(dark)) == dark).all()
    light = 255 - dark
    assert (to_fashion_mnist(Image.fromarray(light)) == dark).all()


def test_aspect_ratio_is_kept_by_padding_with_the_background():
    wide = np.zeros((50, 200), dtype=np.uint8)
    wide[:, :] = 255  # a white bar filling a 4:1 picture
    pixels = to_fashion_mnist(Image.fromarray(np.pad(wide, 2)))  # black border: not inverted
    rows_with_object = np.flatnonzero(pixels.max(1) > 100)
    assert 5 <= len(rows_with_object) <= 9  # about a quarter of the height, not stretched to 28 rows
    assert pixels[:, 0].max() > 100 or pixels[:, 1].max() > 100  # still spans the width


def test_transparent_png_is_flattened_onto_white_then_inverted():
    rgba = np.zeros((40, 40, 4), dtype=np.uint8)  # fully transparent ...
    rgba[10:30, 10:30] = (0, 0, 0, 255)  # ... with an opaque black square
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    pixels = decode_image(buffer.getvalue(), 10_000)
    assert pixels[14, 14] > 200 and pixels[0, 0] < 30


def test_decode_refuses_pictures_over_the_pixel_limit():
    buffer = io.BytesIO()
    Image.new("L", (101, 100)).save(buffer, format="PNG")
    with pytest.raises(ApiError) as error:
        decode_image(buffer.getvalue(), 10_000)
    assert error.value.status_code == 413 and error.value.error == "image_too_large"


def test_samples_answer_503_with_the_reason_when_the_data_set_is_missing(tmp_path):
    settings = Settings(artifacts_dir=tmp_path / "a", default_model_dir=tmp_path / "d", data_dir=tmp_path / "none",
                        download=False, device="cpu")
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 10
        while True:
            response = client.get("/samples/random")
            assert response.status_code == 503 and response.json()["error"] == "samples_unavailable"
            if "could not be loaded" in response.json()["detail"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert "FashionMNIST not found" in response.json()["detail"]
        assert client.get("/samples/3").json()["error"] == "samples_unavailable"
        assert client.get("/metrics").json()["samples"] == {"available": 0}
        assert client.get("/health").json() == {"status": "ok"}


def test_batching_off_still_answers_and_uses_one_pass_per_request(tiny_artifacts, tmp_path):
    settings = Settings(artifacts_dir=tiny_artifacts, default_model_dir=tmp_path, data_dir=tmp_path,
                        download=False, device="cpu", batching=False)
    with TestClient(create_app(settings)) as client:
        for _ in range(3):
            assert client.post("/predict", json={"pixels": [[0] * 28] * 28}).status_code == 200
        text = client.get("/metrics/prometheus").text
        assert "inference_batch_size_count 3.0" in text and "inference_batch_size_sum 3.0" in text


def test_exif_orientation_of_photos_is_applied():
    bar = np.zeros((40, 40), dtype=np.uint8)
    bar[:, 17:23] = 255  # a vertical bar as stored ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... in a photo whose camera says "rotate 90 degrees to display"
    buffer = io.BytesIO()
    Image.fromarray(bar).save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    pixels = decode_image(buffer.getvalue(), 10_000).astype(float)
    assert pixels[14, :].mean() > 150 and pixels[:, 2].mean() < 60  # displayed: a horizontal bar
