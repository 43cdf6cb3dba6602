"""A user's picture file -> the 28x28 uint8 pixels the model was trained on.

1. Decode with Pillow, accepting only PNG, JPEG, GIF (first frame), BMP and WebP. The size in the header is
   checked against ``max_image_pixels`` *before* decoding, so a decompression bomb (a small file that expands to
   gigapixels) is refused instead of eating the memory; Pillow's own bomb check is mapped to the same error.
2. Decode big JPEGs at reduced size (Pillow's ``draft`` scales in the DCT by 1/2, 1/4 or 1/8), never below the
   size ``shared.picture`` works at: a 12-megapixel photo costs about what a 1-megapixel one does.
3. Apply the EXIF orientation (phone photos), flatten transparency onto white (what a viewer shows), and
   convert to grayscale.
4. ``shared.picture.prepare_picture``: background, object, crop, scale and centre like Zalando's preprocessing
   (a 28x28 picture passes through untouched).

Failures raise ``PictureError`` subclasses (domain errors, no HTTP here); ``errors.py`` maps them to 4xx answers.
"""

import io
from dataclasses import replace

from PIL import Image, ImageOps, UnidentifiedImageError

from shared.picture import WORKING_SIDE, NoObjectError, PreparedPicture, prepare_picture

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")


class PictureError(ValueError):
    """An uploaded file that cannot be turned into the model's input; ``code`` names the problem."""

    code = "invalid_image"


class EmptyPicture(PictureError):
    code = "empty_file"


class PictureTooLarge(PictureError):
    code = "image_too_large"


class UnsupportedPicture(PictureError):
    code = "unsupported_image"


class UndecodablePicture(PictureError):
    code = "invalid_image"


def decode_picture(data: bytes, max_image_pixels: int, name: str = "file") -> PreparedPicture:
    """Image file bytes -> the prepared 28x28 picture; ``PictureError`` or ``NoObjectError`` naming the problem."""
    if not data:
        raise EmptyPicture(f"{name}: the uploaded file is empty")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = image.size
        if width * height > max_image_pixels:
            raise PictureTooLarge(f"{name}: {width}x{height} pixels is more than the {max_image_pixels} allowed "
                                  "(MAX_IMAGE_PIXELS)")
        if image.format == "JPEG":
            image.draft("L", (WORKING_SIDE, WORKING_SIDE))  # the smallest DCT scale that is at least this big
        image.load()
        gray = _grayscale(image)
    except PictureError:
        raise
    except Image.DecompressionBombError as error:
        raise PictureTooLarge(f"{name}: {error}") from error
    except UnidentifiedImageError as error:
        raise UnsupportedPicture(f"{name}: not an image in a supported format ({', '.join(FORMATS)})") from error
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as error:
        # Pillow reports truncated and corrupt data as OSError/ValueError/SyntaxError/EOFError.
        raise UndecodablePicture(f"{name}: the image could not be decoded: {error}") from error
    try:
        picture = prepare_picture(gray)
    except NoObjectError as error:
        raise NoObjectError(f"{name}: {error}") from None
    drafted = max(width, height) / max(gray.size)  # > 1 when the JPEG was decoded at reduced size
    if picture.box is None or drafted == 1:
        return picture
    return replace(picture, box=tuple(round(value * drafted, 1) for value in picture.box))


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
