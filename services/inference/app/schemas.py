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
