"""The plain functions and the app in-process (FastAPI TestClient, lifespan included): no server needed."""

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from services.inference.app.classify import results, top_k_result
from services.inference.app.config import Settings
from services.inference.app.main import create_app
from services.inference.app.picture_decoding import PictureTooLarge, decode_picture
from shared.picture import WORKING_SIDE
from tests.waiting import wait_until


def test_top_k_result_orders_classes_and_names_them():
    probabilities = np.array([0.05, 0.6, 0.0, 0.3, 0.05, 0, 0, 0, 0, 0], dtype=np.float32)
    result = top_k_result(probabilities, 3, "v1")
    assert result["class_id"] == 1 and result["label"] == "Trouser" and result["model_version"] == "v1"
    assert [item["class_id"] for item in result["top_k"]] == [1, 3, 0]  # ties keep class order
    assert result["confidence"] == pytest.approx(0.6)
    assert len(results(np.stack([probabilities] * 4), 1, "v1")) == 4


def test_transparent_png_is_flattened_onto_white_then_inverted():
    rgba = np.zeros((40, 40, 4), dtype=np.uint8)  # fully transparent ...
    rgba[15:25, 10:30] = (0, 0, 0, 255)  # ... with an opaque black 20x10 bar
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    picture = decode_picture(buffer.getvalue(), 10_000)
    assert picture.background == "light"
    assert picture.pixels[14, 1] > 200 and picture.pixels[14, 26] > 200  # the bar, light, spans the width ...
    assert picture.pixels[2, 14] == 0 and picture.pixels[25, 14] == 0  # ... on black above and below


def test_decode_refuses_pictures_over_the_pixel_limit():
    buffer = io.BytesIO()
    Image.new("L", (101, 100)).save(buffer, format="PNG")
    with pytest.raises(PictureTooLarge, match="MAX_IMAGE_PIXELS"):
        decode_picture(buffer.getvalue(), 10_000)


def test_a_big_jpeg_is_decoded_at_reduced_size_but_not_below_the_working_size():
    big = np.full((3000, 4000), 250, dtype=np.uint8)
    big[1000:2000, 1500:2500] = 20  # a dark square in the middle of a 12-megapixel photo
    buffer = io.BytesIO()
    Image.fromarray(big).save(buffer, format="JPEG", quality=90)
    image = Image.open(io.BytesIO(buffer.getvalue()))
    image.draft("L", (WORKING_SIDE, WORKING_SIDE))
    assert WORKING_SIDE <= min(image.size) < 1000  # what decode_picture does first: a 1/4 or 1/8 DCT scale
    picture = decode_picture(buffer.getvalue(), 16_000_000)
    assert picture.pixels[2:26, 2:26].min() > 200  # the square fills the 28x28
    assert picture.box == pytest.approx((1500, 1000, 2500, 2000), abs=20)  # in the upload's own pixels


def test_samples_answer_503_with_the_reason_when_the_data_set_is_missing(tmp_path):
    settings = Settings(artifacts_dir=tmp_path / "a", default_model_dir=tmp_path / "d", data_dir=tmp_path / "none",
                        download=False, device="cpu")
    with TestClient(create_app(settings)) as client:
        def failed_to_load():
            response = client.get("/samples/random")
            assert response.status_code == 503 and response.json()["error"] == "samples_unavailable"
            return "could not be loaded" in response.json()["detail"] and response

        response = wait_until(failed_to_load, "the samples' loading to fail")
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
    picture = decode_picture(buffer.getvalue(), 10_000)
    rows, cols = np.nonzero(picture.pixels > 100)
    assert np.ptp(cols) >= 26 and np.ptp(rows) <= 8  # displayed: a horizontal bar
