"""Response models: they document the API in /docs (routes return pre-built JSON for speed)."""

from pydantic import BaseModel


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


class BatchPrediction(BaseModel):
    predictions: list[PredictionResult]
    model_version: str


class Sample(BaseModel):
    index: int
    class_id: int
    label: str
    pixels: list[list[int]]
    image_png_base64: str


class Samples(BaseModel):
    samples: list[Sample]


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    model_version: str


def error_responses(*codes: int) -> dict:
    return {code: {"model": ErrorBody} for code in codes}
