"""The Open Inference Protocol's (KServe V2) JSON objects as pydantic models: they validate the JSON of an
inference request (``v2_codec``) and describe the V2 routes in /docs. Field names and meanings are the protocol's
(https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol)."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Parameters = dict[str, Any]


class RequestInput(BaseModel):
    model_config = ConfigDict(strict=True)  # 3, not "3" or true, where the protocol says a number
    name: str
    shape: list[Annotated[int, Field(ge=0)]] = Field(description="e.g. [N, 28, 28] or [N, 1, 28, 28]")
    datatype: str = Field(description="UINT8 (0-255) or FP32 (values 0-255, like /predict's pixels)")
    parameters: Parameters | None = Field(None, description="`binary_data_size`: this tensor's bytes follow the "
                                                            "JSON (binary tensor data extension)")
    data: Any = Field(None, description="the values, row-major, flat or nested; absent when the tensor is binary")


class RequestOutput(BaseModel):
    model_config = ConfigDict(strict=True)
    name: str = Field(description="`probabilities` or `label`")
    parameters: Parameters | None = Field(None, description="`binary_data` (bool): answer it as raw bytes; "
                                                            "`classification` (1-10): the top classes instead")


class InferenceRequest(BaseModel):
    model_config = ConfigDict(strict=True)
    id: str | None = Field(None, description="echoed in the response")
    parameters: Parameters | None = Field(None, description="`binary_data_output` (bool): every output as raw bytes")
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(None, description="the outputs wanted, in order (default: all)")


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = Field(None, description="`binary_data_size` when the values follow the JSON")
    data: list | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str = Field(description="the version that computed this answer")
    id: str | None = None
    outputs: list[ResponseOutput]


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1: any size (the batch)")


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] = Field(description="the versions this server answers for: the one it serves")
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class V2Error(BaseModel):
    error: str


def v2_errors(*codes: int) -> dict:
    return {code: {"model": V2Error} for code in codes}


def inline_schema(model: type[BaseModel]) -> dict:
    """The model's JSON schema with its nested models written in place (no ``$defs``), for an ``openapi_extra``
    request body, where references to definitions FastAPI never registered would dangle."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)
