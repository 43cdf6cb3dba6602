"""MIME types of picture bytes: tell an upload's type from its first bytes, and wrap bytes in a ``data:`` URI of
their type (the page scales the 28x28 samples up with CSS, ``image-rendering: pixelated``)."""

import base64

# Magic numbers of the formats the inference API decodes. Sniffing the bytes is cheap and does not trust the
# browser's content type; the API still does the one and only decode.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)
ACCEPTED = "PNG, JPEG, GIF, BMP or WebP"


def sniff_image_type(data: bytes) -> str | None:
    """The MIME type of a supported picture, or None when the bytes are not one."""
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for signature, mime in _SIGNATURES:
        if data.startswith(signature):
            return mime
    return None


def data_uri(mime: str, payload: bytes | str) -> str:
    encoded = payload if isinstance(payload, str) else base64.b64encode(payload).decode("ascii")
    return f"data:{mime};base64,{encoded}"
