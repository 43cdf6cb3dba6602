"""Bad V2 inference requests get a 4xx in the protocol's ``{"error": "..."}`` shape, and the server keeps serving."""

import json

import numpy as np
import pytest
import requests

INFER = "/v2/models/fashion-mnist/infer"
HEADER_LENGTH = "Inference-Header-Content-Length"
BLACK = [0] * 784


def tensor(shape=(1, 28, 28), datatype="UINT8", data=BLACK, name="pixels", **fields) -> dict:
    return {"name": name, "shape": list(shape), "datatype": datatype, "data": data, **fields}


def request_json(*inputs: dict, **fields) -> dict:
    return {"json": {"inputs": list(inputs) if inputs else [tensor()], **fields}}


def binary(raw: bytes, shape=(1, 28, 28), datatype="UINT8", size: int | None = None, header_length=None,
           **fields) -> dict:
    """A binary-extension body: the JSON header, then ``raw``; the header length is right unless given."""
    spec = {"name": "pixels", "shape": list(shape), "datatype": datatype,
            "parameters": {"binary_data_size": len(raw) if size is None else size}, **fields}
    header = json.dumps({"inputs": [spec]}).encode()
    length = str(len(header)) if header_length is None else header_length
    return {"data": header + raw, "headers": {HEADER_LENGTH: length}}


CASES = {
    "not_json": ({"data": b"{not json"}, 400, "not valid JSON"),
    "empty_body": ({"data": b""}, 400, "empty"),
    "not_an_object": ({"json": [1, 2]}, 400, "not an inference request"),
    "no_inputs": ({"json": {"outputs": []}}, 400, "inputs"),
    "empty_inputs": ({"json": {"inputs": []}}, 400, "inputs"),
    "wrong_input_name": (request_json(tensor(name="input__0")), 400, "takes one input, 'pixels'"),
    "two_inputs": (request_json(tensor(), tensor()), 400, "takes one input"),
    "wrong_datatype": (request_json(tensor(datatype="INT64")), 400, "INT64"),
    "lowercase_datatype": (request_json(tensor(datatype="uint8")), 400, "uint8"),
    "shape_of_one_row": (request_json(tensor(shape=(1, 28), data=[0] * 28)), 400, "shape [1, 28]"),
    "shape_of_three_channels": (request_json(tensor(shape=(1, 3, 28, 28), data=[0] * 2352)), 400, "[N, 1, 28, 28]"),
    "shape_of_no_images": (request_json(tensor(shape=(0, 28, 28), data=[])), 400, "N >= 1"),
    "shape_as_strings": (request_json(tensor(shape=["1", "28", "28"])), 400, "shape"),
    "negative_shape": (request_json(tensor(shape=(-1, 28, 28))), 400, "shape"),
    "fewer_values_than_shape": (request_json(tensor(data=[0] * 783)), 400, "needs 784 values"),
    "more_values_than_shape": (request_json(tensor(shape=(2, 28, 28), data=[0] * 1569)), 400, "needs 1568 values"),
    "no_data": (request_json({"name": "pixels", "shape": [1, 28, 28], "datatype": "UINT8"}), 400, "needs `data`"),
    "strings_as_data": (request_json(tensor(data=["0"] * 784)), 400, "integers only"),
    "booleans_as_data": (request_json(tensor(datatype="FP32", data=[True] * 784)), 400, "numbers only"),
    "nulls_as_data": (request_json(tensor(data=[None] * 784)), 400, "integers only"),
    "ragged_data": (request_json(tensor(data=[[0] * 28] * 27 + [[0] * 27])), 400, "rectangular"),
    "uint8_over_255": (request_json(tensor(data=[256] * 784)), 400, "0 to 255"),
    "uint8_as_floats": (request_json(tensor(data=[0.5] * 784)), 400, "integers only"),
    "fp32_over_255": (request_json(tensor(datatype="FP32", data=[300.0] * 784)), 422, "from 0 to 255"),
    "fp32_negative": (request_json(tensor(datatype="FP32", data=[-1] * 784)), 422, "from 0 to 255"),
    "fp32_binary_nan": (binary(np.full(784, np.nan, "<f4").tobytes(), datatype="FP32"), 422, "finite"),
    "header_length_not_a_number": (binary(bytes(784), header_length="abc"), 400, HEADER_LENGTH),
    "header_length_beyond_the_body": (binary(bytes(784), header_length="100000"), 400, HEADER_LENGTH),
    "header_length_zero": (binary(bytes(784), header_length="0"), 400, HEADER_LENGTH),
    "header_length_cuts_the_json": (binary(bytes(784), header_length="20"), 400, "not valid JSON"),
    "binary_size_not_the_shape": (binary(bytes(700)), 400, "is 784 bytes"),
    "binary_size_of_uint8_for_fp32": (binary(bytes(784), datatype="FP32"), 400, "is 3136 bytes"),
    "bytes_missing_after_header": (binary(bytes(700), size=784), 400, "700 bytes follow"),
    "bytes_left_over_after_header": (binary(bytes(900), size=784), 400, "900 bytes follow"),
    "binary_size_not_a_number": (binary(bytes(784), size="784"), 400, "binary_data_size"),
    "binary_and_json_data": (binary(bytes(784), data=BLACK), 400, "both"),
    "bytes_after_a_json_input": ({"data": json.dumps({"inputs": [tensor()]}).encode() + bytes(10),
                                  "headers": {HEADER_LENGTH: str(len(json.dumps({"inputs": [tensor()]})))}},
                                 400, "no input has binary_data_size"),
    "unknown_output": (request_json(outputs=[{"name": "logits"}]), 400, "not 'logits'"),
    "output_twice": (request_json(outputs=[{"name": "label"}, {"name": "label"}]), 400, "twice"),
    "classification_of_the_label": (request_json(outputs=[{"name": "label", "parameters": {"classification": 2}}]),
                                    400, "classification"),
    "classification_of_eleven": (request_json(outputs=[{"name": "probabilities",
                                                        "parameters": {"classification": 11}}]), 400, "1-10"),
    "binary_data_not_a_boolean": (request_json(outputs=[{"name": "label", "parameters": {"binary_data": "yes"}}]),
                                  400, "true or false"),
    "binary_data_output_not_a_boolean": (request_json(parameters={"binary_data_output": 1}), 400, "true or false"),
    "shared_memory": (request_json(tensor(parameters={"shared_memory_region": "r0"})), 400, "shared memory"),
    "too_many_images": (binary(bytes(300 * 784), shape=(300, 28, 28)), 413, "MAX_INSTANCES"),
    "compressed_body": ({"data": b"\x1f\x8b", "headers": {"Content-Encoding": "gzip"}}, 415, "gzip"),
    "body_over_limit_by_content_length": ({"data": b"0" * (5 * 1024 * 1024)}, 413, "MAX_BODY_BYTES"),
    "body_over_limit_while_streaming": ({"data": (b"0" * 65536 for _ in range(96))}, 413, "MAX_BODY_BYTES"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_infer_request_is_a_4xx_in_the_protocol_shape(default_server, case):
    kwargs, status, message = CASES[case]
    response = requests.post(f"{default_server}{INFER}", timeout=30, **kwargs)
    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"], response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize("method,path,status,message", [
    ("POST", "/v2/models/mnist/infer", 404, "unknown model 'mnist'"),
    ("POST", "/v2/models/fashion-mnist/versions/1/infer", 404, "version '1' of 'fashion-mnist' is not served"),
    ("GET", "/v2/models/fashion-mnist/versions/1", 404, "not served"),
    ("GET", "/v2/models/fashion-mnist/versions/1/ready", 404, "not served"),
    ("GET", "/v2/models/fashion-mnist/infer", 405, "Method Not Allowed"),
    ("GET", "/v2/repository/index", 404, "Not Found"),
])
def test_unknown_models_versions_and_routes_answer_in_the_protocol_shape(default_server, method, path, status,
                                                                           message):
    response = requests.request(method, f"{default_server}{path}", json={"inputs": [tensor()]}, timeout=10)
    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"] and message in response.json()["error"]


def test_the_own_api_keeps_its_own_error_shape(default_server):
    response = requests.post(f"{default_server}/predict", data=b"{bad", headers={"content-type": "application/json"},
                             timeout=10)
    assert response.status_code == 400 and set(response.json()) == {"error", "detail"}


def test_the_binary_answer_on_the_wire(default_server):
    """Raw bytes after the JSON header, as the extension lays them out: FP32 little-endian, BYTES length-prefixed."""
    kwargs = binary(bytes(784))
    header = json.loads(kwargs["data"][:int(kwargs["headers"][HEADER_LENGTH])])
    header["parameters"] = {"binary_data_output": True}
    body = json.dumps(header).encode()
    response = requests.post(f"{default_server}{INFER}", data=body + bytes(784),
                             headers={HEADER_LENGTH: str(len(body))}, timeout=10)
    assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers[HEADER_LENGTH])
    answer, raw = json.loads(response.content[:length]), response.content[length:]
    sizes = [output["parameters"]["binary_data_size"] for output in answer["outputs"]]
    assert [output["name"] for output in answer["outputs"]] == ["probabilities", "label"] and sizes[0] == 40
    probabilities = np.frombuffer(raw[:40], "<f4")
    assert abs(float(probabilities.sum()) - 1) < 1e-5 and len(raw) == sum(sizes)
    label = raw[40:]
    assert int.from_bytes(label[:4], "little") == len(label) - 4 and label[4:].decode() == "Sandal"
    assert response.headers["X-Model-Version"] == answer["model_version"]


def test_the_server_still_infers_after_all_that(default_server):
    for kwargs in (request_json(tensor(datatype="INT64")), binary(bytes(784), header_length="abc")):
        assert requests.post(f"{default_server}{INFER}", timeout=10, **kwargs).status_code == 400
    response = requests.post(f"{default_server}{INFER}", json={"inputs": [tensor()]}, timeout=10)
    assert response.status_code == 200, response.text
    assert [output["name"] for output in response.json()["outputs"]] == ["probabilities", "label"]
    assert response.headers["X-Model-Version"] == response.json()["model_version"]
    counted = requests.get(f"{default_server}/metrics/prometheus", timeout=5).text
    assert 'status="5' not in counted  # no bad input ever became a 5xx
    assert 'error="invalid_datatype"' in counted and 'error="invalid_header_length"' in counted
