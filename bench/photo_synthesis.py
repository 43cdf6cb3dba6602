"""Photo-like uploads made from FashionMNIST test images, for measuring the upload path against the raw pixels.

A test image is a light garment on black. A product photo of the same garment is the opposite: a dark garment on
a light background, larger, blurrier, lit unevenly, compressed. ``photo`` composes one: the image upscaled (with a
random smooth filter) becomes the garment's opacity, painted in a dark colour over a background, on a canvas of
a random size and shape, then lit, noised, rotated and JPEG-compressed as the transformation asks. Every
transformation takes its randomness from a generator seeded per image, so a run is reproducible.

The transformations (``TRANSFORMATIONS``) each change one thing from a plain centred product photo, and
``all_at_once`` combines them: the case that scored 8 % before the upload path imitated Zalando's preprocessing.
"""

import io
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

UPSCALE_FILTERS = (Image.Resampling.BICUBIC, Image.Resampling.LANCZOS, Image.Resampling.BILINEAR)


@dataclass(frozen=True)
class Look:
    """How one photo is made; a range ``(low, high)`` is drawn uniformly per image."""

    object_fraction: tuple[float, float] = (0.85, 0.95)  # the garment's longer side / the canvas's shorter side
    off_centre: bool = False  # anywhere on the canvas (margins of any size) instead of centred
    background: tuple[float, float] = (242, 255)  # gray level of the background (light object: of the dark one)
    garment: tuple[float, float] = (0, 50)  # gray level where the garment is fully opaque
    light_on_dark: bool = False  # the data set's own polarity (a light garment on a dark background)
    colour: bool = False  # an RGB photo: a tinted background and a coloured garment
    gradient: tuple[float, float] = (0.0, 0.0)  # how much the light falls off across the frame
    rotation: float = 0.0  # degrees, either way
    noise: tuple[float, float] = (0.0, 0.0)  # standard deviation of Gaussian sensor noise, gray levels
    jpeg_quality: tuple[float, float] = (85, 85)
    canvas: tuple[int, int] = (300, 900)  # the shorter side of the photo, px
    portrait_or_landscape: bool = False  # 3:4 or 4:3 instead of square


PLAIN = Look()
TRANSFORMATIONS: dict[str, Look] = {
    "centred": PLAIN,
    "off_centre_margins": replace(PLAIN, object_fraction=(0.5, 0.7), off_centre=True),
    "small_30_50": replace(PLAIN, object_fraction=(0.3, 0.5), off_centre=True),
    "grey_background": replace(PLAIN, object_fraction=(0.6, 0.8), background=(150, 215)),
    "gradient": replace(PLAIN, object_fraction=(0.6, 0.8), gradient=(0.2, 0.4)),
    "jpeg_60_90": replace(PLAIN, object_fraction=(0.7, 0.9), jpeg_quality=(60, 90)),
    "rotated": replace(PLAIN, object_fraction=(0.6, 0.8), rotation=6.0),
    "noise": replace(PLAIN, object_fraction=(0.6, 0.8), noise=(4, 10), jpeg_quality=(90, 90)),
    "colour": replace(PLAIN, object_fraction=(0.6, 0.8), colour=True, portrait_or_landscape=True),
    "dark_background": replace(PLAIN, object_fraction=(0.5, 0.7), off_centre=True, light_on_dark=True,
                               background=(0, 30), garment=(210, 255)),
    "all_at_once": Look(object_fraction=(0.3, 0.5), off_centre=True, background=(160, 225), gradient=(0.15, 0.35),
                        rotation=5.0, noise=(3, 8), jpeg_quality=(60, 90), portrait_or_landscape=True),
}


def photo(pixels: np.ndarray, look: Look, rng: np.random.Generator) -> bytes:
    """A JPEG file of the 28x28 test image ``pixels`` photographed the way ``look`` says."""
    short = int(rng.integers(look.canvas[0], look.canvas[1] + 1))
    height, width = short, short
    if look.portrait_or_landscape:
        height, width = (short * 4 // 3, short) if rng.random() < 0.5 else (short, short * 4 // 3)
    side = max(8, round(_draw(rng, look.object_fraction) * short))
    filter_ = UPSCALE_FILTERS[int(rng.integers(len(UPSCALE_FILTERS)))]
    opacity = np.zeros((height, width), dtype=np.float32)
    top, left = ((height - side) // 2, (width - side) // 2) if not look.off_centre else (
        int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1)))
    upscaled = Image.fromarray(pixels).resize((side, side), filter_)
    opacity[top:top + side, left:left + side] = np.asarray(upscaled, dtype=np.float32) / 255.0
    if look.rotation:
        angle = rng.uniform(-look.rotation, look.rotation)
        opacity = np.asarray(Image.fromarray(opacity).rotate(angle, Image.Resampling.BICUBIC), dtype=np.float32)
    opacity = np.clip(opacity, 0.0, 1.0)[..., np.newaxis]
    background, garment = _colours(look, rng)
    image = background * (1 - opacity) + garment * opacity
    if look.gradient[1] > 0:
        image = image * (1 - _draw(rng, look.gradient) * _ramp(height, width, rng))[..., np.newaxis]
    if look.noise[1] > 0:
        image = image + rng.normal(0.0, _draw(rng, look.noise), image.shape)
    rgb = Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    (rgb if look.colour else rgb.convert("L")).save(buffer, format="JPEG", quality=round(_draw(rng, look.jpeg_quality)))
    return buffer.getvalue()


def _draw(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds)) if bounds[0] != bounds[1] else float(bounds[0])


def _colours(look: Look, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """RGB of the background and of the opaque garment. Colour photos: a pale tint behind a dark coloured garment
    (their gray levels stay in the ``background`` and ``garment`` ranges)."""
    background, garment = _draw(rng, look.background), _draw(rng, look.garment)
    if not look.colour:
        return np.full(3, background), np.full(3, garment)
    tint = rng.uniform(-12, 12, size=3)
    hue = rng.uniform(0, 1, size=3)
    return np.clip(background + tint, 0, 255), garment + hue / hue.max() * 60


def _ramp(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """0 at one side of the frame, 1 at the opposite side, in a random direction."""
    y, x = np.mgrid[0:height, 0:width]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * x / width + np.sin(angle) * y / height
    return (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-9)
