"""Every kind of bad input gets a 4xx JSON error naming the problem, and the server keeps serving."""

import io
import struct
import zlib

import numpy as np
import pytest
import requests
from PIL import Image

from tests.inference.helpers import encode
from tests.waiting import wait_until

GOOD = [[0] * 28 for _ in range(28)]
JSON = {"content-type": "application/json"}


def _png() -> bytes:
    return encode(np.zeros((28, 28), dtype=np.uint8))


def _bomb() -> bytes:
    """A tiny PNG whose header promises 30000x30000 pixels (900 MP): a decompression bomb."""
    data = bytearray(_png())
    ihdr = bytearray(data[12:29])  # chunk type + 13 bytes of IHDR data
    ihdr[4:12] = struct.pack(">II", 30000, 30000)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def _chunks(total: int):
    for _ in range(total // 65536):
        yield b"x" * 65536


CASES = {
    "not_an_image": (lambda: {"files": {"file": ("a.png", b"this is text, not a picture")}}, 415, "unsupported_image"),
    "truncated_image": (lambda: {"files": {"file": ("a.png", _png()[:50])}}, 422, "invalid_image"),
    "empty_upload": (lambda: {"files": {"file": ("a.png", b"")}}, 422, "empty_file"),
    "wrong_field_name": (lambda: {"files": {"image": ("a.png", _png())}}, 422, "missing_file"),
    "text_field_as_file": (lambda: {"data": {"file": "hello"}, "files": {"x": ("x", b"1")}}, 422, "invalid_file"),
    "multipart_without_boundary": (lambda: {"data": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}},
                                   400, "invalid_multipart"),
    "wrong_content_type": (lambda: {"data": b"hello", "headers": {"content-type": "text/plain"}}, 415,
                           "unsupported_media_type"),
    "pixels_wrong_shape": (lambda: {"json": {"pixels": [[0] * 28] * 27}}, 422, "invalid_pixels"),
    "pixels_flat": (lambda: {"json": {"pixels": [0] * 784}}, 422, "invalid_pixels"),
    "pixels_out_of_range": (lambda: {"json": {"pixels": [[256] * 28] * 28}}, 422, "invalid_pixels"),
    "pixels_negative": (lambda: {"json": {"pixels": [[-1] * 28] * 28}}, 422, "invalid_pixels"),
    "pixels_nan": (lambda: {"data": b'{"pixels": [' + b",".join([b"[" + b",".join([b"NaN"] * 28) + b"]"] * 28) + b"]}",
                    "headers": JSON}, 422, "invalid_pixels"),
    "pixels_not_numbers": (lambda: {"json": {"pixels": [["a"] * 28] * 28}}, 422, "invalid_pixels"),
    "pixels_booleans": (lambda: {"json": {"pixels": [[True] * 28] * 28}}, 422, "invalid_pixels"),
    "wrong_json_key": (lambda: {"json": {"pixel": GOOD}}, 422, "invalid_body"),
    "both_json_keys": (lambda: {"json": {"pixels": GOOD, "instances": [GOOD]}}, 422, "invalid_body"),
    "empty_instances": (lambda: {"json": {"instances": []}}, 422, "invalid_pixels"),
    "not_json": (lambda: {"data": b"{not json", "headers": JSON}, 400, "invalid_json"),
    "empty_json_body": (lambda: {"data": b"", "headers": JSON}, 422, "empty_body"),
    "too_many_instances": (lambda: {"json": {"instances": [GOOD] * 300}}, 413, "too_many_instances"),
    "too_many_files": (lambda: {"files": [("file", (f"{i}.png", b"x")) for i in range(70)]}, 413, "too_many_files"),
    "body_over_limit_by_content_length": (lambda: {"data": b"0" * (5 * 1024 * 1024), "headers": JSON}, 413,
                                          "body_too_large"),
    "body_over_limit_while_streaming": (lambda: {"data": _chunks(6 * 1024 * 1024), "headers": JSON}, 413,
                                        "body_too_large"),
    "decompression_bomb": (lambda: {"files": {"file": ("bomb.png", _bomb())}}, 413, "image_too_large"),
    "plain_background_photo": (lambda: {"files": {"file": ("wall.jpg", encode(np.full((300, 400), 235, np.uint8),
                                                                          "JPEG"))}}, 422, "no_object_found"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_predict_input_is_a_4xx_json_error(default_server, case):
    make_kwargs, status, error = CASES[case]
    kwargs = make_kwargs()
    response = requests.post(f"{default_server}/predict", timeout=30, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert isinstance(body["detail"], str) and len(body["detail"]) > 10
    assert requests.get(f"{default_server}/health", timeout=5).json() == {"status": "ok"}


def test_a_picture_over_max_image_pixels_is_refused(default_server):
    """A real picture (not a bomb) that is bigger than MAX_IMAGE_PIXELS (16 MP by default)."""
    buffer = io.BytesIO()
    Image.new("L", (5000, 4000), 0).save(buffer, format="PNG")
    response = requests.post(f"{default_server}/predict", files={"file": ("big.png", buffer.getvalue())}, timeout=30)
    assert response.status_code == 413
    assert response.json()["error"] == "image_too_large" and "MAX_IMAGE_PIXELS" in response.json()["detail"]


@pytest.mark.parametrize("query", ["top_k=0", "top_k=11", "top_k=abc", "top_k=2.5"])
def test_bad_top_k(default_server, query):
    response = requests.post(f"{default_server}/predict?{query}", json={"pixels": GOOD}, timeout=10)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_top_k" and "top_k" in response.json()["detail"]


@pytest.mark.parametrize("path,status,error", [
    ("/samples/10000", 404, "sample_not_found"),
    ("/samples/-1", 422, "invalid_request"),
    ("/samples/abc", 422, "invalid_request"),
    ("/samples/random?count=0", 422, "invalid_request"),
    ("/samples/random?count=65", 422, "invalid_request"),
    ("/no/such/route", 404, "not_found"),
])
def test_bad_get_requests(default_server, path, status, error):
    _wait_for_samples(default_server)
    response = requests.get(f"{default_server}{path}", timeout=10)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


def test_wrong_method_is_a_json_405(default_server):
    response = requests.get(f"{default_server}/predict", timeout=10)
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_the_server_still_predicts_after_all_that(default_server):
    assert requests.get(f"{default_server}/health", timeout=5).json() == {"status": "ok"}
    response = requests.post(f"{default_server}/predict", json={"pixels": GOOD}, timeout=10)
    assert response.status_code == 200 and "class_id" in response.json()
    counted = requests.get(f"{default_server}/metrics/prometheus", timeout=5).text
    assert 'status="413"' in counted and 'status="5' not in counted  # no bad input ever became a 5xx


def _wait_for_samples(url: str) -> None:
    wait_until(lambda: requests.get(f"{url}/metrics", timeout=5).json()["samples"]["available"], "the test images")
