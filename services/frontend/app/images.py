"""Picture helpers: upscale a 28x28 sample crisply, and tell an upload's type from its first bytes."""

import base64
import io

from PIL import Image

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


def upscaled_png(pixels: list[list[int]], size: int) -> str:
    """The 28x28 grayscale pixels as a ``size`` x ``size`` PNG (NEAREST: crisp squares), base64-encoded."""
    height, width = len(pixels), len(pixels[0])
    flat = bytes(max(0, min(255, int(value))) for row in pixels for value in row)
    image = Image.frombytes("L", (width, height), flat).resize((size, size), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def data_uri(mime: str, payload: bytes | str) -> str:
    encoded = payload if isinstance(payload, str) else base64.b64encode(payload).decode("ascii")
    return f"data:{mime};base64,{encoded}"
