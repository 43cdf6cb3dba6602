"""shared.picture: a photo becomes a 28x28 image in the data set's style, and hopeless pictures are named."""

import io

import numpy as np
import pytest
from PIL import Image

from bench.photo_synthesis import TRANSFORMATIONS, photo
from shared.picture import NoObjectError, prepare_picture


def garment() -> np.ndarray:
    """A FashionMNIST-like 28x28 image: a light 'dress' (full height, 14 wide) with texture, on black."""
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[:, 7:21] = 150
    pixels[::3, 7:21] = 255
    pixels[5:9, 10:18] = 40
    return pixels


def jpeg_image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_a_28x28_picture_passes_through_untouched_even_with_a_light_background():
    light = 255 - garment()
    prepared = prepare_picture(Image.fromarray(light))
    assert prepared.passed_through and prepared.box is None and prepared.warnings == ()
    assert (prepared.pixels == light).all()


def test_an_upscaled_data_set_image_comes_back_almost_exactly():
    original = garment()
    prepared = prepare_picture(Image.fromarray(original).resize((280, 280), Image.Resampling.NEAREST))
    assert prepared.background == "dark" and not prepared.passed_through
    assert np.abs(prepared.pixels.astype(int) - original).mean() < 20  # sharpening dims the flat parts a little
    assert prepared.box == (70, 0, 210, 280)  # the 14x28 garment, in the 280x280 picture's pixels


@pytest.mark.parametrize("name", ["centred", "off_centre_margins", "small_30_50", "grey_background", "gradient",
                                  "rotated", "noise", "colour", "dark_background", "all_at_once"])
def test_a_photo_of_the_garment_is_cropped_scaled_and_centred_like_the_data_set(name):
    original = garment()
    data = photo(original, TRANSFORMATIONS[name], np.random.default_rng(3))
    prepared = prepare_picture(jpeg_image(data))
    rows, cols = np.nonzero(prepared.pixels > 60)
    assert rows.min() <= 1 and rows.max() >= 26  # the longer side (the height) spans the 28 px again
    assert abs((cols.min() + cols.max()) / 2 - 13.5) <= 1.5  # centred
    assert 10 <= np.ptp(cols) + 1 <= 17  # aspect ratio kept (14 px wide in the original)
    assert prepared.pixels.max() == 255 and prepared.pixels[:, :5].max() < 40  # stretched; background black
    assert np.abs(prepared.pixels.astype(int) - original).mean() < 30 and prepared.warnings == ()


def test_the_box_is_reported_in_the_pictures_own_pixels():
    canvas = np.full((300, 400), 240, dtype=np.uint8)
    canvas[100:250, 50:120] = 30  # a dark 70x150 rectangle
    prepared = prepare_picture(Image.fromarray(canvas))
    assert prepared.box == pytest.approx((50, 100, 120, 250), abs=2)
    assert prepared.background == "light"


def test_a_lighting_gradient_is_not_mistaken_for_an_object():
    ramp = np.linspace(140, 250, 500)[np.newaxis, :] * np.ones((400, 1))
    with_object = ramp.copy()
    with_object[150:250, 300:350] *= 0.3  # a dark bar in the brighter half
    prepared = prepare_picture(Image.fromarray(with_object.astype(np.uint8)))
    rows, cols = np.nonzero(prepared.pixels > 100)
    assert np.ptp(rows) + 1 >= 26 and 10 <= np.ptp(cols) + 1 <= 17  # the 50x100 bar, not the whole frame
    with pytest.raises(NoObjectError):
        prepare_picture(Image.fromarray(ramp.astype(np.uint8)))


@pytest.mark.parametrize("picture", [
    np.full((200, 300), 255, dtype=np.uint8),  # blank white
    np.zeros((200, 300), dtype=np.uint8),  # blank black
    np.random.default_rng(0).normal(200, 6, (200, 300)).clip(0, 255).astype(np.uint8),  # sensor noise only
], ids=["white", "black", "noise"])
def test_plain_background_is_refused_rather_than_guessed(picture):
    with pytest.raises(NoObjectError, match="no object found"):
        prepare_picture(Image.fromarray(picture))


def test_two_separate_objects_are_reported_and_the_larger_is_classified():
    canvas = np.full((300, 600), 245, dtype=np.uint8)
    canvas[50:250, 40:160] = 20  # the larger garment
    canvas[100:220, 420:520] = 40  # another one, far to its right
    prepared = prepare_picture(Image.fromarray(canvas))
    assert prepared.warnings == ("several_objects",)
    assert prepared.box == pytest.approx((40, 50, 160, 250), abs=2)


def test_parts_of_one_garment_separated_by_a_light_stripe_stay_one_object():
    canvas = np.full((400, 400), 245, dtype=np.uint8)
    canvas[60:180, 100:300] = 30  # top of a shirt ...
    canvas[190:340, 100:300] = 30  # ... and its bottom, below a 10 px white stripe
    prepared = prepare_picture(Image.fromarray(canvas))
    assert prepared.warnings == ()
    assert prepared.box == pytest.approx((100, 60, 300, 340), abs=2)


def test_an_object_touching_the_border_does_not_spoil_the_background():
    canvas = np.full((300, 300), 230, dtype=np.uint8)
    canvas[:, 120:180] = 25  # trousers cut off by the top and bottom edges
    prepared = prepare_picture(Image.fromarray(canvas))
    assert prepared.background == "light"
    assert prepared.box == pytest.approx((120, 0, 180, 300), abs=2)
