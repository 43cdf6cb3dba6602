"""A user's picture -> the 28x28 uint8 pixels the model was trained on.

The steps, in order:
1. Decode with Pillow, accepting only PNG, JPEG, GIF (first frame), BMP and WebP. The size in the header is
   checked against ``max_image_pixels`` *before* decoding, so a decompression bomb (a small file that
   expands to gigapixels) is refused with 413 instead of eating the memory; Pillow's own bomb check is
   mapped to the same error.
2. Apply the EXIF orientation (phone photos), flatten transparency onto white (what a viewer shows), and
   convert to grayscale.
3. Background rule: FashionMNIST shows light objects on a black background. The background is judged from
   the picture's border: if the mean of the outermost rows and columns is above 127, the background is light
   (a product photo on white) and the picture is inverted, so the object becomes light on black.
4. Pad to a square with the background value (keeps the aspect ratio), then resize to 28x28 (box filter when
   shrinking, which averages like a camera would; bilinear when enlarging). A 28x28 picture is not resampled,
   so a PNG of a test image yields exactly its pixels.
"""

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from services.inference.app.errors import ApiError
from shared.preprocess import IMAGE_SIDE

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
LIGHT_BACKGROUND_THRESHOLD = 127


def decode_image(data: bytes, max_image_pixels: int, name: str = "file") -> np.ndarray:
    """Image file bytes -> (28, 28) uint8 array; ``ApiError`` (4xx) naming the problem otherwise."""
    if not data:
        raise ApiError(422, "empty_file", f"{name}: the uploaded file is empty")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = image.size
        if width * height > max_image_pixels:
            raise ApiError(413, "image_too_large", f"{name}: {width}x{height} pixels is more than the "
                                                   f"{max_image_pixels} allowed (MAX_IMAGE_PIXELS)")
        image.load()
        gray = _grayscale(image)
    except ApiError:
        raise
    except Image.DecompressionBombError as error:
        raise ApiError(413, "image_too_large", f"{name}: {error}") from error
    except UnidentifiedImageError as error:
        raise ApiError(415, "unsupported_image", f"{name}: not an image in a supported format "
                                                 f"({', '.join(FORMATS)})") from error
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as error:
        # Pillow reports truncated and corrupt data as OSError/ValueError/SyntaxError/EOFError.
        raise ApiError(422, "invalid_image", f"{name}: the image could not be decoded: {error}") from error
    return to_fashion_mnist(gray)


def _grayscale(image: Image.Image) -> Image.Image:
    if "exif" in image.info:  # only photos carry an orientation; skipping the lookup saves time per request
        image = ImageOps.exif_transpose(image) or image
    if image.mode == "L":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    return image.convert("L")


def border_mean(pixels: np.ndarray) -> float:
    """Mean of the outermost rows and columns: the picture's background brightness."""
    if min(pixels.shape) <= 2:
        return float(pixels.mean())
    edges = (pixels[0, :], pixels[-1, :], pixels[1:-1, 0], pixels[1:-1, -1])
    return float(np.concatenate(edges).mean())


def to_fashion_mnist(gray: Image.Image) -> np.ndarray:
    """A grayscale picture of any size -> (28, 28) uint8, light object on black (see the module docstring)."""
    pixels = np.asarray(gray, dtype=np.uint8)
    background = border_mean(pixels)
    if pixels.shape != (IMAGE_SIDE, IMAGE_SIDE):
        height, width = pixels.shape
        side = max(width, height)
        if width != height:
            square = Image.new("L", (side, side), int(round(background)))
            square.paste(gray, ((side - width) // 2, (side - height) // 2))
            gray = square
        method = Image.Resampling.BOX if side > IMAGE_SIDE else Image.Resampling.BILINEAR
        pixels = np.asarray(gray.resize((IMAGE_SIDE, IMAGE_SIDE), method), dtype=np.uint8)
    if background > LIGHT_BACKGROUND_THRESHOLD:
        pixels = 255 - pixels
    return np.ascontiguousarray(pixels)
