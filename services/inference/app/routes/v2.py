"""The Open Inference Protocol (KServe V2 REST) beside the own API, so Triton's and KServe's clients, load tools and
gateways can talk to the service: the model is ``fashion-mnist``, its version the one this process serves.

Inference goes through the same micro-batcher, model and temperature as /predict (same probabilities, image by
image); the tensors are ``v2_codec``'s. Errors are the own API's, in the protocol's ``{"error": "..."}`` shape
(``errors.error_response`` picks it for every /v2 path): 400 for a request the protocol or the model cannot take,
413 over MAX_BODY_BYTES or MAX_INSTANCES, 422 for FP32 pixels outside 0-255, 404 for an unknown model or a version
this process does not serve (no other version is loaded on demand: only the served one can answer correctly
without a second model in memory), 401 without a valid API key (API_KEYS) on infer, 503 before a model loads.
Health and metadata stay open, like /health; readiness answers 400 while not ready, as the protocol asks (4xx).
"""

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.inference.app.auth import ApiKeyDep
from services.inference.app.deps import ServingDep
from services.inference.app.errors import ApiError
from services.inference.app.model_store import LoadedModel, NoModelLoaded
from services.inference.app.replica import MODEL_VERSION_HEADER
from services.inference.app.responses import OrjsonResponse
from services.inference.app.serving_state import ServingState
from services.inference.app.v2_codec import (
    HEADER_LENGTH,
    INPUT_NAME,
    LABEL,
    MODEL_NAME,
    PROBABILITIES,
    DecodedRequest,
    decode_request,
    encode_response,
)
from services.inference.app.v2_schemas import (
    InferenceRequest,
    InferenceResponse,
    Live,
    ModelMetadata,
    Ready,
    ServerMetadata,
    inline_schema,
    v2_errors,
)
from shared.classes import NUM_CLASSES
from shared.preprocess import IMAGE_SIDE

TAG = "Open Inference Protocol (KServe V2)"
router = APIRouter(prefix="/v2", tags=[TAG])

SERVER_NAME = "fashion-mnist-inference"
EXTENSIONS = ["binary_tensor_data", "classification"]
PLATFORMS = {"onnx": "onnxruntime_onnx", "torch": "pytorch_libtorch"}
INLINE_BODY_BYTES = 256 * 1024  # bigger bodies are decoded in a thread, so the event loop keeps serving
INFER_OPENAPI = {
    "parameters": [{"name": HEADER_LENGTH, "in": "header", "required": False, "schema": {"type": "integer"},
                    "description": "binary tensor data extension: the JSON header's length in bytes; the binary "
                                   "inputs' raw little-endian bytes follow it, in order"}],
    "requestBody": {"required": True, "description": "an inference request: JSON, or a JSON header and raw bytes",
                    "content": {"application/json": {"schema": inline_schema(InferenceRequest)},
                                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
}
INFER_RESPONSES = {200: {"content": {"application/octet-stream": {}}}, **v2_errors(400, 401, 404, 413, 415, 422, 503)}


@router.get("/health/live", response_model=Live, summary="The server is up")
async def live() -> dict:
    return {"live": True}


@router.get("/health/ready", response_model=Ready, responses=v2_errors(400), summary="A model is loaded")
async def ready(serving: ServingDep) -> OrjsonResponse:
    return _readiness(serving.store.current)


@router.get("", response_model=ServerMetadata, summary="Server metadata: name, version, protocol extensions")
async def server_metadata(request: Request) -> dict:
    return {"name": SERVER_NAME, "version": request.app.version, "extensions": EXTENSIONS}


@router.get("/models/{model_name}", response_model=ModelMetadata, responses=v2_errors(404, 503),
            summary="Model metadata: versions, platform, input and output tensors")
async def model_metadata(model_name: str, serving: ServingDep) -> dict:
    return _metadata(_served(serving, model_name, None))


@router.get("/models/{model_name}/versions/{model_version}", response_model=ModelMetadata,
            responses=v2_errors(404, 503), summary="Metadata of one version (the served one)")
async def version_metadata(model_name: str, model_version: str, serving: ServingDep) -> dict:
    return _metadata(_served(serving, model_name, model_version))


@router.get("/models/{model_name}/ready", response_model=Ready, responses=v2_errors(400, 404),
            summary="The model is ready")
async def model_ready(model_name: str, serving: ServingDep) -> OrjsonResponse:
    return _readiness(serving.store.current, model_name)


@router.get("/models/{model_name}/versions/{model_version}/ready", response_model=Ready,
            responses=v2_errors(400, 404), summary="This version is the one served, and ready")
async def version_ready(model_name: str, model_version: str, serving: ServingDep) -> OrjsonResponse:
    return _readiness(serving.store.current, model_name, model_version)


@router.post("/models/{model_name}/infer", dependencies=[ApiKeyDep], response_model=InferenceResponse,
             responses=INFER_RESPONSES, openapi_extra=INFER_OPENAPI, summary="Classify a tensor of 28x28 images")
async def infer(model_name: str, request: Request, serving: ServingDep) -> Response:
    return await _infer(request, serving, model_name, None)


@router.post("/models/{model_name}/versions/{model_version}/infer", dependencies=[ApiKeyDep],
             response_model=InferenceResponse, responses=INFER_RESPONSES, openapi_extra=INFER_OPENAPI,
             summary="Classify with this version (the served one)")
async def infer_version(model_name: str, model_version: str, request: Request, serving: ServingDep) -> Response:
    return await _infer(request, serving, model_name, model_version)


async def _infer(request: Request, serving: ServingState, model_name: str, version: str | None) -> Response:
    _served(serving, model_name, version)  # 404 or 503 before the body is read
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise ApiError(415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported; send the "
                                                    "body uncompressed")
    with serving.batcher.handling():  # as /predict: the whole body first, then parsing counts as arriving
        body = await request.body()
        with serving.batcher.arriving():
            decoded = await _decode(body, request.headers.get(HEADER_LENGTH), serving.settings.max_instances)
        probabilities, loaded = await serving.batcher.predict(decoded.pixels)
    if version is not None and loaded.version != version:  # a hot swap while it ran: not the version asked for
        raise _not_served(version, loaded.version)
    encoded = encode_response(probabilities, decoded.outputs, loaded.version, decoded.id)
    headers = {MODEL_VERSION_HEADER: loaded.version}
    if encoded.header_length is not None:
        headers[HEADER_LENGTH] = str(encoded.header_length)
    media_type = "application/json" if encoded.header_length is None else "application/octet-stream"
    return Response(encoded.body, headers=headers, media_type=media_type)


async def _decode(body: bytes, header_length: str | None, max_images: int) -> DecodedRequest:
    """The request's tensors; ``TensorError`` (``errors.py`` answers it) for one the protocol or model cannot take."""
    if len(body) > INLINE_BODY_BYTES:
        return await asyncio.to_thread(decode_request, body, header_length, max_images)
    return decode_request(body, header_length, max_images)


def _served(serving: ServingState, model_name: str, version: str | None) -> LoadedModel:
    """The served model, if the path names it: 404 for another model or version, 503 before one loads."""
    _known(model_name)
    loaded = serving.store.require_current()
    if version is not None and version != loaded.version:
        raise _not_served(version, loaded.version)
    return loaded


def _known(model_name: str) -> None:
    if model_name != MODEL_NAME:
        raise ApiError(404, "model_not_found", f"unknown model {model_name!r}; this server serves {MODEL_NAME!r}")


def _not_served(version: str, served: str) -> ApiError:
    return ApiError(404, "version_not_served", f"version {version!r} of {MODEL_NAME!r} is not served here: this "
                                               f"process serves {served!r} (ask without a version for the "
                                               "served one)")


def _readiness(loaded: LoadedModel | None, model_name: str = MODEL_NAME, version: str | None = None) -> OrjsonResponse:
    _known(model_name)
    if loaded is None:
        return OrjsonResponse({"ready": False, "error": str(NoModelLoaded())}, status_code=400)
    if version is not None and version != loaded.version:
        raise _not_served(version, loaded.version)
    return OrjsonResponse({"ready": True})


def _metadata(loaded: LoadedModel) -> dict:
    return {
        "name": MODEL_NAME, "versions": [loaded.version], "platform": PLATFORMS.get(loaded.backend.name, "unknown"),
        # UINT8 is the native form; FP32 (0-255) and [N, 1, 28, 28] are accepted too (the metadata has one of each)
        "inputs": [{"name": INPUT_NAME, "datatype": "UINT8", "shape": [-1, IMAGE_SIDE, IMAGE_SIDE]}],
        "outputs": [{"name": PROBABILITIES, "datatype": "FP32", "shape": [-1, NUM_CLASSES]},
                    {"name": LABEL, "datatype": "BYTES", "shape": [-1]}],
    }
