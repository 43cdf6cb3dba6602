"""Response models: they document the API in /docs (routes return pre-built JSON for speed)."""

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    error: str
    detail: str


class ClassProbability(BaseModel):
    class_id: int
    label: str
    probability: float


class PictureWarning(BaseModel):
    """Something about an uploaded picture that makes the answer less reliable (e.g. ``several_objects``)."""

    code: str
    detail: str


class PredictionResult(BaseModel):
    class_id: int
    label: str
    confidence: float
    top_k: list[ClassProbability]
    model_version: str
    warnings: list[PictureWarning]


class Explanation(PredictionResult):
    method: str = Field(description="how the saliency was computed")
    saliency: list[list[float]] = Field(description="28 rows of 28 values in [0, 1]: how much each pixel supports "
                                                    "the predicted class (0 for black pixels)")
    overlay_png_base64: str = Field(description="PNG, 280x280: the 28x28 input (nearest-neighbour) with the saliency "
                                                "as a heat map blended on top")


class BatchPrediction(BaseModel):
    predictions: list[PredictionResult]
    model_version: str


class Sample(BaseModel):
    index: int
    class_id: int
    label: str
    pixels: list[list[int]]
    image_png_base64: str = Field(description="the 28x28 image as a PNG (scale it up with CSS: "
                                              "`image-rendering: pixelated`)")
    prediction: Explanation | None = Field(None, description="with `explain=true`: what /explain answers for it")


class Samples(BaseModel):
    samples: list[Sample]


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    model_version: str
    backend: str | None = Field(None, description="only when the model's ONNX graph disagrees with its checkpoint: "
                                                  "what serves it instead (torch)")
    graph: str | None = Field(None, description="only then: how the graph disagrees, e.g. 'the ONNX graph disagrees "
                                                "with its checkpoint (logits differ by 2.1); serving torch'")


def error_responses(*codes: int) -> dict:
    return {code: {"model": ErrorBody} for code in codes}


def document_limits(schema: dict, *, max_files: int, max_instances: int) -> dict:
    """The OpenAPI schema with this server's limits in the request bodies of /predict: MAX_FILES files per upload,
    MAX_INSTANCES images per JSON batch (the routes' static descriptions cannot know the settings)."""
    body = schema.get("paths", {}).get("/predict", {}).get("post", {}).get("requestBody", {}).get("content", {})
    upload = body.get("multipart/form-data", {}).get("schema", {}).get("properties", {}).get("file")
    if upload is not None:
        upload["maxItems"] = max_files
    instances = body.get("application/json", {}).get("schema", {}).get("properties", {}).get("instances")
    if instances is not None:
        instances["maxItems"] = max_instances
    return schema


def document_api_keys(schema: dict, *, required: bool) -> dict:
    """The operations that take an API key say whether this server needs one: without API_KEYS each also accepts
    no credentials at all (OpenAPI's empty requirement ``{}``), so /docs and generated clients do not insist on one."""
    if not required:
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                security = operation.get("security") if isinstance(operation, dict) else None
                if security and {"ApiKey": []} in security and {} not in security:
                    security.append({})
    return schema
