"""The Open Inference Protocol's tensors to and from numpy, for the one model this server serves.

A request body is JSON, or, with the binary tensor data extension, a JSON header of
``Inference-Header-Content-Length`` bytes followed by each binary input's raw little-endian bytes in the order of
the inputs (``parameters.binary_data_size`` says how many). It becomes the uint8 pixels (N, 28, 28) that /predict
also computes on: UINT8 as they are; FP32 like /predict's JSON pixels (0-255, rounded to the nearest integer).

The response carries the wanted outputs, each as JSON ``data`` or, when asked for (``binary_data`` on the output,
``binary_data_output`` on the request), as raw bytes after the JSON header; BYTES elements as 4-byte
little-endian lengths, each followed by its bytes.

No HTTP here: bad input raises ``TensorError`` with a code, and ``errors.py`` gives each code its status.
"""

import struct
from dataclasses import dataclass

import numpy as np
import orjson
from pydantic import ValidationError

from services.inference.app.v2_schemas import InferenceRequest, Parameters, RequestInput, RequestOutput
from services.inference.app.validation_text import describe_validation_errors
from shared.classes import CLASS_NAMES, NUM_CLASSES
from shared.preprocess import IMAGE_SIDE

MODEL_NAME = "fashion-mnist"
HEADER_LENGTH = "Inference-Header-Content-Length"
INPUT_NAME = "pixels"
PROBABILITIES, LABEL = "probabilities", "label"
INPUT_DTYPES = {"UINT8": np.dtype("u1"), "FP32": np.dtype("<f4")}
PIXELS_PER_IMAGE = IMAGE_SIDE * IMAGE_SIDE


class TensorError(ValueError):
    """A request the protocol or the model cannot take; ``code`` names the problem (``invalid_shape``, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class WantedOutput:
    name: str
    binary: bool
    classification: int = 0  # > 0: the top classes as BYTES "probability:class_id:label" (classification ext.)


@dataclass(frozen=True)
class DecodedRequest:
    id: str | None
    pixels: np.ndarray  # uint8 (N, 28, 28)
    outputs: list[WantedOutput]


def decode_request(body: bytes, header_length: str | None, max_images: int) -> DecodedRequest:
    """The request's pixels and wanted outputs, or a ``TensorError`` naming what is wrong."""
    header, binary = _split(body, header_length)
    request = _parse_header(header)
    if len(request.inputs) != 1 or request.inputs[0].name != INPUT_NAME:
        names = ", ".join(repr(tensor.name) for tensor in request.inputs)
        raise TensorError("unknown_input", f"model {MODEL_NAME!r} takes one input, {INPUT_NAME!r}; got {names}")
    tensor = request.inputs[0]
    count = _image_count(tensor, max_images)
    if _binary_size(tensor) is not None:
        values = _binary_values(tensor, binary, count)
    elif len(binary):
        raise TensorError("size_mismatch", f"{len(binary)} bytes follow the JSON header, but no input has "
                                           "binary_data_size")
    else:
        values = _json_values(tensor, count)
    return DecodedRequest(request.id, _to_pixels(values, tensor.datatype).reshape(count, IMAGE_SIDE, IMAGE_SIDE),
                          _wanted_outputs(request))


def _split(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """(JSON header, the binary part after it)."""
    if header_length is None:
        return body, memoryview(b"")
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 < length <= len(body):
        raise TensorError("invalid_header_length", f"{HEADER_LENGTH} is {header_length!r}, but it must be the "
                                                   f"length of the JSON header: from 1 to the body's {len(body)} bytes")
    return body[:length], memoryview(body)[length:]


def _parse_header(header: bytes) -> InferenceRequest:
    if not header:
        raise TensorError("empty_body", 'the body is empty; send an inference request: {"inputs": [...]}')
    try:
        parsed = orjson.loads(header)
    except orjson.JSONDecodeError as error:
        raise TensorError("invalid_json", f"the JSON header is not valid JSON: {error}") from None
    try:
        return InferenceRequest.model_validate(parsed)
    except ValidationError as error:
        raise TensorError("invalid_request", f"not an inference request: {describe_validation_errors(error.errors())}"
                          ) from None


def _image_count(tensor: RequestInput, max_images: int) -> int:
    if tensor.datatype not in INPUT_DTYPES:
        raise TensorError("invalid_datatype", f"input {INPUT_NAME!r} is {tensor.datatype}; send UINT8 (0-255) or "
                                              "FP32 (values 0-255) pixels")
    side = [IMAGE_SIDE, IMAGE_SIDE]
    shape = tensor.shape
    if not (shape[1:] == side or shape[1:] == [1, *side]) or shape[0] < 1:
        raise TensorError("invalid_shape", f"input {INPUT_NAME!r} has shape {shape}; send [N, 28, 28] or "
                                           "[N, 1, 28, 28] with N >= 1")
    if shape[0] > max_images:
        raise TensorError("too_many_instances", f"{shape[0]} images is more than the {max_images} allowed in one "
                                                "request (MAX_INSTANCES)")
    return shape[0]


def _binary_size(tensor: RequestInput) -> int | None:
    size = _parameters(tensor.parameters, "input").get("binary_data_size")
    if size is not None and (type(size) is not int or size < 0):
        raise TensorError("invalid_request", f"binary_data_size must be a byte count, got {size!r}")
    return size


def _parameters(parameters: Parameters | None, owner: str) -> Parameters:
    parameters = parameters or {}
    if "shared_memory_region" in parameters:
        raise TensorError("unsupported_parameter", f"shared memory ({owner} `shared_memory_region`) is not "
                                                   "supported here; send the tensor in the body")
    return parameters


def _binary_values(tensor: RequestInput, binary: memoryview, count: int) -> np.ndarray:
    dtype = INPUT_DTYPES[tensor.datatype]
    expected = count * PIXELS_PER_IMAGE * dtype.itemsize
    size = _binary_size(tensor)
    if tensor.data is not None:
        raise TensorError("invalid_request", f"input {INPUT_NAME!r} has both `data` and binary_data_size; send one")
    if size != expected:
        raise TensorError("size_mismatch", f"binary_data_size is {size} bytes, but {tensor.datatype} of shape "
                                           f"{tensor.shape} is {expected} bytes")
    if len(binary) != size:
        raise TensorError("size_mismatch", f"{len(binary)} bytes follow the JSON header, but binary_data_size "
                                           f"says {size}")
    return np.frombuffer(binary, dtype=dtype)


def _json_values(tensor: RequestInput, count: int) -> np.ndarray:
    if not isinstance(tensor.data, list):
        raise TensorError("invalid_data", f"input {INPUT_NAME!r} needs `data`: a list of its values (or "
                                          "binary_data_size and the bytes after the JSON)")
    try:
        values = np.array(tensor.data)
    except ValueError:  # ragged nesting
        raise TensorError("invalid_data", "`data` is not a rectangular array of numbers") from None
    kinds = "iu" if tensor.datatype == "UINT8" else "iuf"  # no booleans, strings, nulls or huge integers
    if values.dtype.kind not in kinds:
        what = "integers" if tensor.datatype == "UINT8" else "numbers"
        raise TensorError("invalid_data", f"`data` of a {tensor.datatype} tensor must hold {what} only")
    if values.size != count * PIXELS_PER_IMAGE:
        raise TensorError("size_mismatch", f"shape {tensor.shape} needs {count * PIXELS_PER_IMAGE} values, `data` "
                                           f"has {values.size}")
    if tensor.datatype == "UINT8" and (values.min() < 0 or values.max() > 255):
        raise TensorError("invalid_data", "UINT8 values are integers from 0 to 255")
    return values.reshape(-1)


def _to_pixels(values: np.ndarray, datatype: str) -> np.ndarray:
    """uint8 pixels; FP32 values as /predict takes its JSON pixels: finite, 0-255, rounded to the nearest."""
    if datatype == "UINT8":  # a copy: binary values are a read-only view of the body (torch warns on those)
        return values.astype(np.uint8)
    if not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= 255):
        raise TensorError("invalid_pixels", "FP32 pixels must be finite values from 0 to 255 (grayscale, light "
                                            "object on black, like /predict's pixels)")
    return np.rint(values.astype(np.float32, copy=False)).astype(np.uint8)


def _wanted_outputs(request: InferenceRequest) -> list[WantedOutput]:
    every_binary = _parameters(request.parameters, "request").get("binary_data_output", False)
    if type(every_binary) is not bool:
        raise TensorError("invalid_request", f"binary_data_output must be true or false, got {every_binary!r}")
    wanted = request.outputs if request.outputs is not None else [RequestOutput(name=PROBABILITIES),
                                                                   RequestOutput(name=LABEL)]
    outputs = [_wanted_output(output, every_binary) for output in wanted]
    names = [output.name for output in outputs]
    if len(set(names)) != len(names):
        raise TensorError("invalid_request", f"an output is asked for twice: {names}")
    return outputs


def _wanted_output(output: RequestOutput, every_binary: bool) -> WantedOutput:
    if output.name not in (PROBABILITIES, LABEL):
        raise TensorError("unknown_output", f"model {MODEL_NAME!r} has outputs {PROBABILITIES!r} and {LABEL!r}, "
                                            f"not {output.name!r}")
    parameters = _parameters(output.parameters, "output")
    binary, classes = parameters.get("binary_data", every_binary), parameters.get("classification", 0)
    if type(binary) is not bool:
        raise TensorError("invalid_request", f"binary_data must be true or false, got {binary!r}")
    if type(classes) is not int or not 0 <= classes <= NUM_CLASSES or (classes and output.name != PROBABILITIES):
        raise TensorError("invalid_request", f"classification is a number of classes (1-{NUM_CLASSES}) for "
                                             f"{PROBABILITIES!r}, got {classes!r} for {output.name!r}")
    return WantedOutput(output.name, binary, classes)


# ---- the response ----


@dataclass(frozen=True)
class EncodedResponse:
    body: bytes
    header_length: int | None  # the JSON header's length when binary outputs follow it, else None


def encode_response(probabilities: np.ndarray, outputs: list[WantedOutput], model_version: str,
                    request_id: str | None) -> EncodedResponse:
    """Probabilities (N, 10) -> the response's outputs, JSON or binary as each was asked for."""
    tensors, blobs = [], []
    for output in outputs:
        datatype, values = _output_values(output, probabilities)
        tensor = {"name": output.name, "datatype": datatype, "shape": list(values.shape)}
        if output.binary:
            blob = values.astype("<f4").tobytes() if datatype == "FP32" else serialize_bytes(values.ravel().tolist())
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = values.ravel() if datatype == "FP32" else values.ravel().tolist()
        tensors.append(tensor)
    head = {"model_name": MODEL_NAME, "model_version": model_version, "outputs": tensors}
    if request_id is not None:
        head["id"] = request_id
    header = orjson.dumps(head, option=orjson.OPT_SERIALIZE_NUMPY)
    return EncodedResponse(b"".join([header, *blobs]), len(header) if blobs else None)


def _output_values(output: WantedOutput, probabilities: np.ndarray) -> tuple[str, np.ndarray]:
    """(datatype, values) of one output: FP32 probabilities (N, 10), the BYTES label (N,), or the top classes."""
    if output.name == LABEL:
        return "BYTES", np.array(CLASS_NAMES, dtype=object)[probabilities.argmax(axis=1)]
    if not output.classification:
        return "FP32", probabilities
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :output.classification]
    top = [[f"{row[i]:f}:{i}:{CLASS_NAMES[i]}" for i in best] for row, best in zip(probabilities, order, strict=True)]
    return "BYTES", np.array(top, dtype=object)


def serialize_bytes(elements: list[str]) -> bytes:
    """BYTES elements in the binary extension's form: each a 4-byte little-endian length, then its UTF-8 bytes."""
    encoded = [element.encode() for element in elements]
    return b"".join(struct.pack("<I", len(data)) + data for data in encoded)
