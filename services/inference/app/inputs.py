"""The two body forms of POST /predict and /explain, turned into uint8 pixels (n, 28, 28), with 4xx errors for bad
input; and the ``top_k`` query parameter both take.

One route accepts both multipart uploads and JSON, so the body is parsed here by Content-Type instead of by
FastAPI's parameter binding; the pydantic models below validate the JSON and also describe it in /docs.
"""

import asyncio
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.json_schema import SkipJsonSchema

from services.inference.app.config import Settings
from services.inference.app.errors import ApiError
from services.inference.app.multipart import parse_multipart
from services.inference.app.picture_decoding import decode_picture
from services.inference.app.validation_text import describe_validation_errors
from shared.picture import WARNING_DETAILS, PreparedPicture
from shared.preprocess import IMAGE_SIDE

# Bodies up to these sizes are parsed on the event loop, bigger ones in a thread so the event loop keeps serving.
# Pictures: a 28x28 PNG is under 1 KB and takes microseconds; a photo takes milliseconds (see shared.picture).
INLINE_JSON_BYTES = 256 * 1024
INLINE_PICTURE_BYTES = 16 * 1024

Pixel = Annotated[float, Field(ge=0, le=255, allow_inf_nan=False, strict=True)]
Row = Annotated[list[Pixel], Field(min_length=IMAGE_SIDE, max_length=IMAGE_SIDE)]
Pixels = Annotated[list[Row], Field(min_length=IMAGE_SIDE, max_length=IMAGE_SIDE,
                                    description="28 rows of 28 grayscale values 0-255 (light object on black)")]


class PredictJson(BaseModel):
    """Exactly one of ``pixels`` (one image) or ``instances`` (several, answered in order)."""

    # The schema says what is accepted: one of the two keys (`oneOf`), never null, nothing else.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [{"required": ["pixels"]},
                                                                           {"required": ["instances"]}]})
    pixels: Pixels | SkipJsonSchema[None] = None
    instances: Annotated[list[Pixels], Field(min_length=1)] | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def exactly_one(self) -> "PredictJson":
        if (self.pixels is None) == (self.instances is None):
            raise ValueError("send exactly one of `pixels` (one image) or `instances` (a list of images)")
        return self


@dataclass(frozen=True)
class Images:
    """A request's images as the model takes them, and what their preparation noticed."""

    pixels: np.ndarray  # uint8 (n, 28, 28)
    single: bool  # one `file` or `pixels`: answer one result, not a list
    warnings: list[list[dict[str, str]]]  # per image: [{"code", "detail"}] (pixel arrays never have any)

    @classmethod
    def from_pixels(cls, pixels: np.ndarray, single: bool) -> "Images":
        return cls(pixels, single, [[] for _ in range(len(pixels))])

    @classmethod
    def from_pictures(cls, pictures: list[PreparedPicture]) -> "Images":
        warnings = [[{"code": code, "detail": WARNING_DETAILS[code]} for code in picture.warnings]
                    for picture in pictures]
        return cls(np.stack([picture.pixels for picture in pictures]), len(pictures) == 1, warnings)


async def read_pixels(request: Request, settings: Settings) -> Images:
    """The request's images as uint8 (n, 28, 28), whether it asked for a single result, and warnings."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        return await _from_multipart(request, settings)
    if content_type == "application/json" or content_type.endswith("+json"):
        body = await request.body()
        if len(body) > INLINE_JSON_BYTES:
            return await asyncio.to_thread(_from_json, body, settings)
        return _from_json(body, settings)
    raise ApiError(415, "unsupported_media_type", f"Content-Type {content_type or '(none)'!r} is not accepted; "
                   "send multipart/form-data with `file` fields, or application/json with `pixels` or `instances`")


async def read_one_image(request: Request, settings: Settings) -> Images:
    """The request's single image (a batch, several files or ``instances``, is refused)."""
    images = await read_pixels(request, settings)
    if not images.single:
        raise ApiError(422, "single_image_only", f"this endpoint explains one image, got a batch of "
                                                 f"{len(images.pixels)}; send one `file`, or JSON with `pixels` "
                                                 "(not `instances`)")
    return images


def parse_top_k(raw: str | None) -> int:
    """By hand rather than ``Query(ge=1, le=10)``: FastAPI's parameter binding costs more than it is worth on
    the hottest route (documented through ``openapi_extra`` instead)."""
    if raw is None:
        return 3
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 10:
        raise ApiError(422, "invalid_top_k", f"top_k must be an integer from 1 to 10, got {raw!r}")
    return value


def _from_json(body: bytes, settings: Settings) -> Images:
    if not body:
        raise ApiError(422, "empty_body", 'the JSON body is empty; send {"pixels": [[...]]} or {"instances": [...]}')
    try:
        parsed = PredictJson.model_validate_json(body)
    except ValidationError as error:
        errors = error.errors()
        if errors[0]["type"] == "json_invalid":
            raise ApiError(400, "invalid_json", f"the body is not valid JSON: {errors[0]['msg']}") from None
        code = "invalid_pixels" if errors[0]["loc"][:1] in (("pixels",), ("instances",)) else "invalid_body"
        raise ApiError(422, code, describe_validation_errors(errors)) from None
    if parsed.instances is not None and len(parsed.instances) > settings.max_instances:
        raise ApiError(413, "too_many_instances", f"{len(parsed.instances)} instances is more than the "
                                                  f"{settings.max_instances} allowed (MAX_INSTANCES)")
    images = [parsed.pixels] if parsed.pixels is not None else parsed.instances
    values = np.array(images, dtype=np.float32)
    return Images.from_pixels(np.rint(values).astype(np.uint8), parsed.pixels is not None)


async def _from_multipart(request: Request, settings: Settings) -> Images:
    parts = parse_multipart(await request.body(), request.headers["content-type"], settings.max_files)
    uploads = [part for part in parts if part.name == "file"]
    if not uploads:
        fields = ", ".join(sorted({part.name for part in parts})) or "none"
        raise ApiError(422, "missing_file", f"no `file` field in the multipart body (fields sent: {fields}); "
                                            "upload the picture as `file`")
    if any(part.filename is None for part in uploads):
        raise ApiError(422, "invalid_file", "`file` must be a file upload, not a text field")
    decode = [(part.data, settings.max_image_pixels, part.filename or f"file {i + 1}")
              for i, part in enumerate(uploads)]
    if sum(len(data) for data, _, _ in decode) > INLINE_PICTURE_BYTES:
        pictures = await asyncio.to_thread(lambda: [decode_picture(*args) for args in decode])
    else:
        pictures = [decode_picture(*args) for args in decode]
    return Images.from_pictures(pictures)
