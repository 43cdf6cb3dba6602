import numpy as np
import pytest
import torch
from PIL import Image

from shared.classes import CLASS_NAMES
from shared.model import FashionMNISTModelV2, count_parameters, weights_size_bytes
from shared.preprocess import image_to_tensor, pixels_to_batch


def test_model_has_the_reference_architecture_and_parameter_count():
    model = FashionMNISTModelV2()
    assert count_parameters(model) == 43_754
    assert weights_size_bytes(model) == 43_754 * 4
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 32, (3, 3), (1, 1)), (32, 32, (3, 3), (1, 1)), (32, 32, (3, 3), (1, 1)), (32, 32, (3, 3), (1, 1))]
    assert model.classifier[1].in_features == 32 * 7 * 7
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 10)


def test_class_names_are_in_label_order():
    assert CLASS_NAMES[0] == "T-shirt/top" and CLASS_NAMES[9] == "Ankle boot" and len(CLASS_NAMES) == 10


def test_array_pil_and_batch_preprocessing_agree():
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    from_array = image_to_tensor(pixels)
    from_pil = image_to_tensor(Image.fromarray(pixels))
    from_batch = pixels_to_batch(torch.from_numpy(pixels)[None])[0]
    assert from_array.shape == (1, 28, 28)
    assert torch.equal(from_array, from_pil) and torch.equal(from_array, from_batch)
    assert from_array.min() < -0.5 < 2.0 < from_array.max()  # standardised, not just scaled


@pytest.mark.parametrize("bad", [np.zeros((27, 28), np.uint8), np.zeros((28, 28), np.float32)])
def test_preprocessing_rejects_wrong_shape_or_type(bad):
    with pytest.raises((ValueError, TypeError)):
        image_to_tensor(bad)


def test_numpy_and_torch_preprocessing_are_the_same_numbers():
    """One definition for both: the torch-free server path (numpy) and training (torch) agree bit for bit."""
    pixels = np.random.default_rng(1).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    from_numpy = pixels_to_batch(pixels)
    from_torch = pixels_to_batch(torch.from_numpy(pixels))
    assert isinstance(from_numpy, np.ndarray) and from_numpy.dtype == np.float32 and from_numpy.shape == (7, 1, 28, 28)
    assert np.array_equal(from_numpy, from_torch.numpy())
    with pytest.raises(TypeError):
        pixels_to_batch(pixels.astype(np.float32))
