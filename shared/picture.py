"""A person's picture -> a 28x28 image that looks like FashionMNIST, made the way Zalando made the data set.

Zalando trimmed the background around each product photo (anything within 5 % of the corner colour), resized the
longer side to 28 px, sharpened, centred the result on 28x28 and negated it, so every training image shows a
light garment on black that fills the frame along its longer side. A photo does not: the garment is dark on a
light (or grey, or unevenly lit) background, small and off-centre. ``prepare_picture`` repeats Zalando's steps,
made robust for photos:

1. **Pass-through**: a 28x28 picture is already in the model's format and is returned untouched.
2. **Working size**: larger pictures are area-averaged down to at most ``WORKING_SIDE`` px, which bounds the
   cost (the decoder has usually shrunk JPEGs already, see ``services/inference/app/picture_decoding.py``).
3. **Background from the border**: a smooth surface (a quadratic in x and y, so lighting gradients and
   vignetting fit) is fitted to a band along the border, rejecting outliers, so a garment touching an edge does
   not count as background. The spread of the remaining border pixels measures the picture's noise.
4. **Polarity**: whether the object is darker than its background (a product photo, a drawing) or lighter (a
   picture in the data set's own style).
5. **Object strength**: each pixel's darkening (or brightening) relative to the local background, in [0, 1]:
   0 on background whatever its brightness, 1 for black on white.
6. **Foreground mask**: the lightly smoothed strength above a threshold chosen from the data: four times the
   measured noise, and at least Zalando's own 5 %.
7. **The object**: connected parts of the mask; the largest and the parts near it form the object. A second
   large object far from it is reported (``several_objects``) and left out; no object at all raises
   ``NoObjectError``.
8. **Crop, scale, centre**: the object's box, scaled so its longer side is 28 px and centred, with sub-pixel
   precision, by area-averaging (a shift of half a pixel costs the model about a point of accuracy).
9. **Sharpen and stretch**: a light unsharp mask (Zalando sharpened after resizing) and a stretch so the
   strongest pixel is 255, as in nearly every FashionMNIST image; then uint8.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from shared import ndimage
from shared.preprocess import IMAGE_SIDE

WORKING_SIDE = 320  # px: an object filling a third of the frame still covers ~5 source pixels per output pixel
BORDER_FRACTION = 0.02  # width of the border band that defines the background
SMOOTHING_SIGMA = 1.0  # px at working size: noise reduction before thresholding (it widens the mask by ~1.5 px)
NOISE_FACTOR = 4.0  # the mask threshold in units of the measured (smoothed) noise
ZALANDO_TRIM = 0.05  # Zalando trimmed what lay within 5 % of the corner colour
PART_MIN_FRACTION = 0.02  # smaller components than this fraction of the largest are specks, not parts
NEAR_FRACTION = 0.08  # parts closer to the object than this fraction of its size belong to it
OTHER_OBJECT_FRACTION = 0.25  # a far component at least this big (vs the object) is another object
SHARPEN_AMOUNT = 0.5
MIN_OBJECT_PIXELS = 16  # at working size

Warning = Literal["several_objects"]
WARNING_DETAILS: dict[Warning, str] = {
    "several_objects": "the picture seems to show several objects; the largest one was classified (crop the "
                       "picture to one garment for a reliable answer)",
}


class NoObjectError(ValueError):
    """The picture shows only background (or too little contrast to tell an object from it)."""


@dataclass(frozen=True)
class PreparedPicture:
    """The model's input, plus what the preparation found (for answers, the page and debugging)."""

    pixels: np.ndarray  # (28, 28) uint8, light object on black
    passed_through: bool  # True: the picture was already 28x28 and is untouched
    background: Literal["light", "dark"] | None = None  # None when passed through
    box: tuple[float, float, float, float] | None = None  # the object's box (x0, y0, x1, y1) in the input's pixels
    warnings: tuple[Warning, ...] = ()


def prepare_picture(image: Image.Image) -> PreparedPicture:
    """Any grayscale (or convertible) picture -> ``PreparedPicture``; ``NoObjectError`` when there is nothing."""
    gray = image if image.mode == "L" else image.convert("L")
    if gray.size == (IMAGE_SIDE, IMAGE_SIDE):
        return PreparedPicture(np.array(gray, dtype=np.uint8), passed_through=True)
    working, scale = _working_copy(gray)
    pixels = np.asarray(working, dtype=np.float64)
    smoothed = ndimage.gaussian_filter(pixels, SMOOTHING_SIGMA)
    background, noise = fit_background(smoothed)
    dark = _object_is_darker(smoothed - background, noise)
    strength = object_strength(pixels, background, dark)
    smoothed_strength = object_strength(smoothed, background, dark)
    headroom = float(np.mean(background if dark else 255.0 - background))
    threshold = max(NOISE_FACTOR * noise / max(headroom, 1.0), ZALANDO_TRIM)
    obj, warnings = find_object(smoothed_strength > threshold)
    box = _object_box(obj, strength, pixels - background, headroom)
    # Keep the strength near the object only: background noise elsewhere must not reach the 28x28.
    strength = np.where(ndimage.binary_dilation(obj, iterations=2), strength, 0.0)
    result = _crop_scale_centre(strength, box)
    return PreparedPicture(
        pixels=_sharpen_and_stretch(result), passed_through=False, background="light" if dark else "dark",
        box=tuple(round(value / scale, 1) for value in box), warnings=warnings,
    )


def _working_copy(gray: Image.Image) -> tuple[Image.Image, float]:
    width, height = gray.size
    scale = min(1.0, WORKING_SIDE / max(width, height))
    if scale == 1.0:
        return gray, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return gray.resize(size, Image.Resampling.BOX), scale


def border_band(shape: tuple[int, int]) -> np.ndarray:
    """A mask of the pixels near the picture's edges: where the background is judged."""
    band = max(1, round(BORDER_FRACTION * min(shape)))
    border = np.zeros(shape, dtype=bool)
    border[:band], border[-band:], border[:, :band], border[:, -band:] = True, True, True, True
    return border


def fit_background(pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """A quadratic surface fitted to the border band (outliers rejected), and the noise (robust std) about it."""
    height, width = pixels.shape
    ys, xs = np.nonzero(border_band(pixels.shape))
    values = pixels[ys, xs]
    design = _quadratic_terms(xs / width - 0.5, ys / height - 0.5)
    keep = np.abs(values - np.median(values)) <= 3 * _robust_std(values) + 1.0  # start from the typical border
    noise = _robust_std(values[keep])
    for _ in range(5):
        coefficients = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
        residuals = values - design @ coefficients
        noise = _robust_std(residuals[keep])
        updated = np.abs(residuals) <= 3 * noise + 1.0
        if updated.sum() < 0.3 * len(values) or (updated == keep).all():
            break
        keep = updated
    x = (np.arange(width) / width - 0.5)[np.newaxis, :]
    y = (np.arange(height) / height - 0.5)[:, np.newaxis]
    c = coefficients
    surface = c[0] + c[1] * x + c[2] * y + c[3] * x * x + c[4] * y * y + c[5] * x * y  # the terms below, on a grid
    return surface, noise


def _quadratic_terms(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """1, x, y, x², y², xy for each point: the columns of a least-squares fit of a smooth surface."""
    return np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=-1)


def _robust_std(values: np.ndarray) -> float:
    """Standard deviation estimated from the median absolute deviation (unmoved by a minority of outliers)."""
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _object_is_darker(residuals: np.ndarray, noise: float) -> bool:
    """Which way the clearly-not-background pixels deviate, weighted by how far."""
    significant = np.abs(residuals) > max(NOISE_FACTOR * noise, 8.0)
    darker = -residuals[significant & (residuals < 0)].sum()
    lighter = residuals[significant & (residuals > 0)].sum()
    return darker >= lighter


def object_strength(pixels: np.ndarray, background: np.ndarray, dark: bool) -> np.ndarray:
    """How far each pixel departs from the local background towards the object's side, as a fraction in [0, 1]:
    relative darkening for dark objects (so uneven lighting divides out), brightening towards white otherwise."""
    if dark:
        return np.clip((background - pixels) / np.maximum(background, 1.0), 0.0, 1.0)
    return np.clip((pixels - background) / np.maximum(255.0 - background, 1.0), 0.0, 1.0)


def find_object(mask: np.ndarray) -> tuple[np.ndarray, tuple[Warning, ...]]:
    """The main object's mask (the largest component and the parts near it), and warnings."""
    components = ndimage.label(mask)
    labels, count, sizes, boxes = components.labels, components.count, components.sizes, components.boxes
    if count == 0:
        raise NoObjectError("no object found: the picture looks like plain background (photograph one garment "
                            "against a plain background, filling a good part of the frame)")
    largest = int(np.argmax(sizes))
    if sizes[largest] < MIN_OBJECT_PIXELS:
        raise NoObjectError("no object found: only specks differ from the background")
    parts = [i for i in range(count) if sizes[i] >= PART_MIN_FRACTION * sizes[largest]]
    group, box = {largest}, _box(boxes[largest])
    reach = NEAR_FRACTION * max(box[2] - box[0], box[3] - box[1])
    changed = True
    while changed:  # grow the object by every part within reach of it (transitively)
        changed = False
        for i in parts:
            if i not in group and _gap(box, _box(boxes[i])) <= reach:
                group.add(i)
                box = _union(box, _box(boxes[i]))
                changed = True
    others = [i for i in parts if i not in group and sizes[i] >= OTHER_OBJECT_FRACTION * sizes[largest]]
    warnings: tuple[Warning, ...] = ("several_objects",) if others else ()
    return np.isin(labels, [i + 1 for i in group]), warnings


def _object_box(obj: np.ndarray, strength: np.ndarray, residuals: np.ndarray, headroom: float) -> tuple[int, ...]:
    """The object's box from the unsmoothed strength (smoothing widens a sharp edge by a pixel or two, which would
    shrink the object in the 28x28), thresholded against the unsmoothed noise; the mask's box if that finds little."""
    raw_noise = _robust_std(residuals[border_band(residuals.shape)])
    raw = obj & (strength > max(NOISE_FACTOR * raw_noise / max(headroom, 1.0), ZALANDO_TRIM))
    return _extent(raw if raw.sum() >= MIN_OBJECT_PIXELS else obj)


def _extent(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1) of a mask's true pixels."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _box(slices: tuple[slice, slice]) -> tuple[int, int, int, int]:
    rows, cols = slices
    return cols.start, rows.start, cols.stop, rows.stop


def _union(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, int, int, int]:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _gap(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Distance between two boxes (0 when they overlap)."""
    dx = max(0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0, max(a[1], b[1]) - min(a[3], b[3]))
    return float(np.hypot(dx, dy))


def _crop_scale_centre(strength: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The square around the box's centre whose side is the box's longer side, area-averaged to 28x28."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    centre_x, centre_y = (x0 + x1) / 2 + side, (y0 + y1) / 2 + side  # + side: coordinates in the padded array
    padded = np.pad(strength.astype(np.float32), side)
    square = (centre_x - side / 2, centre_y - side / 2, centre_x + side / 2, centre_y + side / 2)
    small = Image.fromarray(padded).resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BOX, box=square)
    return np.asarray(small, dtype=np.float64)


def _sharpen_and_stretch(strength: np.ndarray) -> np.ndarray:
    """Sharpen, then stretch so the strongest pixel is 255. (Stretching first and clipping the sharpening's
    overshoot scored 1-2 points lower on rotated and blurry photos in ``python -m bench photos``.)"""
    sharpened = strength + SHARPEN_AMOUNT * (strength - ndimage.gaussian_filter(strength, 1.0))
    peak = float(sharpened.max())
    if peak <= 0:
        raise NoObjectError("no object found: nothing stands out from the background")
    return np.rint(np.clip(sharpened / peak, 0.0, 1.0) * 255).astype(np.uint8)
