"""What an upload must be before it goes to the API: a non-empty file of at most MAX_UPLOAD_BYTES whose first
bytes are a picture format the API decodes (the API does the one and only decode)."""

from typing import Any

from werkzeug.datastructures import FileStorage

from services.frontend.app.errors import Problem
from services.frontend.app.mime import ACCEPTED, data_uri, sniff_image_type


def read_upload(file: FileStorage | None, limit: int) -> dict[str, Any]:
    """The upload's bytes, sniffed type and a data URI to show it; a ``Problem`` (400, 413, 415) otherwise."""
    if file is None or not file.filename:
        raise Problem(400, "missing_file", "Choose a picture to upload (the form field is called 'file').")
    data = file.read(limit + 1)
    if not data:
        raise Problem(400, "empty_file", f"The file {file.filename!r} is empty.")
    if len(data) > limit:
        raise too_large(limit)
    mime = sniff_image_type(data)
    if mime is None:
        raise Problem(415, "unsupported_media_type",
                      f"{file.filename!r} is not a picture we can read: upload a {ACCEPTED} file.")
    return {"filename": file.filename, "data": data, "mime": mime, "image": data_uri(mime, data),
            "name": file.filename}


def too_large(limit: int) -> Problem:
    return Problem(413, "file_too_large", f"That picture is too big: the limit is {limit / 1024 / 1024:.1f} MiB. "
                                          "A small picture is plenty, the model looks at 28x28 pixels.")
