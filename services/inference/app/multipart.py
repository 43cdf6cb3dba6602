"""A lean multipart/form-data reader for the hot path of POST /predict.

Starlette's ``request.form()`` spools every part into an ``UploadFile`` (a temporary-file object, a form
container, an async close); for a few small pictures that bookkeeping costs more than decoding them. The body
is already in memory (and capped at MAX_BODY_BYTES), so this feeds it to the same python-multipart parser
and keeps each part as plain bytes.

A plain well-formed body (CRLF line endings, no preamble, parts with simple headers: what browsers, curl,
requests and httpx send) is split with a few ``bytes`` searches instead: the parser's callbacks in Python cost
~60 us for one picture, a sixth of what the event loop spent on a /predict, and ~40 us more per extra part.
Anything else (a preamble, odd line endings, a malformed body) goes to the parser, so errors are the parser's.

No HTTP here: a malformed body raises ``MalformedMultipart``, one with more than ``max_parts`` parts ``TooManyParts``;
``errors.py`` answers them as 400 ``invalid_multipart`` and 413 ``too_many_files``.
"""

from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header


class MalformedMultipart(ValueError):
    """A body that is not multipart/form-data as its Content-Type says (no boundary, or a broken body)."""


class TooManyParts(ValueError):
    """More parts than the caller allows (MAX_FILES)."""

    def __init__(self, max_parts: int) -> None:
        super().__init__(f"more than {max_parts} parts in the multipart body (MAX_FILES)")


@dataclass
class Part:
    name: str = ""
    filename: str | None = None  # None: a text field, not a file
    chunks: list[bytes] = field(default_factory=list)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def boundary_of(content_type: str) -> bytes:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise MalformedMultipart("multipart/form-data without a boundary in Content-Type")
    return boundary


def parse_multipart(body: bytes, content_type: str, max_parts: int) -> list[Part]:
    """All parts of the body, in order; ``MalformedMultipart`` or ``TooManyParts``."""
    boundary = boundary_of(content_type)
    parts = _plain_parts(body, boundary)
    if parts is None:
        return _parse(body, boundary, max_parts)
    if len(parts) > max_parts:
        raise TooManyParts(max_parts)
    return parts


def _plain_parts(body: bytes, boundary: bytes) -> list[Part] | None:
    """The parts of a plain body; None for anything else (the parser decides about it)."""
    delimiter = b"--" + boundary
    closing = b"\r\n" + delimiter + b"--"
    end = body.rfind(closing)
    if not body.startswith(delimiter + b"\r\n") or end < 0 or body[end + len(closing):] not in (b"", b"\r\n"):
        return None
    parts = []
    for chunk in body[len(delimiter) + 2:end].split(b"\r\n" + delimiter + b"\r\n"):
        part = _plain_part(chunk, delimiter)
        if part is None:
            return None
        parts.append(part)
    return parts


def _plain_part(chunk: bytes, delimiter: bytes) -> Part | None:
    head, separator, data = chunk.partition(b"\r\n\r\n")
    if not separator or delimiter in head or b"\r\n" + delimiter in data:
        return None
    part = Part(chunks=[data])
    for line in head.split(b"\r\n"):
        field_name, colon, value = line.partition(b":")
        if not colon or not field_name or field_name != field_name.strip():
            return None
        if field_name.lower() == b"content-disposition":
            _, options = parse_options_header(value.strip())
            part.name = options.get(b"name", b"").decode("utf-8", "replace")
            if b"filename" in options:
                part.filename = options[b"filename"].decode("utf-8", "replace")
    return part


def _parse(body: bytes, boundary: bytes, max_parts: int) -> list[Part]:
    parts: list[Part] = []
    header: dict[str, bytes] = {"field": b"", "value": b""}

    def on_part_begin() -> None:
        if len(parts) >= max_parts:
            raise TooManyParts(max_parts)
        parts.append(Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        if header["field"].lower() == b"content-disposition":
            _, options = parse_options_header(header["value"])
            parts[-1].name = options.get(b"name", b"").decode("utf-8", "replace")
            if b"filename" in options:
                parts[-1].filename = options[b"filename"].decode("utf-8", "replace")
        header["field"], header["value"] = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].chunks.append(data[start:end])

    callbacks = {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                 "on_header_value": on_header_value, "on_header_end": on_header_end, "on_part_data": on_part_data}
    parser = MultipartParser(boundary, callbacks)
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as error:
        raise MalformedMultipart(f"malformed multipart body: {error}") from None
    return parts
