"""shared.ndimage gives scipy.ndimage's answers (scipy is a test dependency only; the CPU image has none)."""

import numpy as np
import pytest
from scipy import ndimage as scipy_ndimage

from shared import ndimage


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (40, 57), (320, 213)])
@pytest.mark.parametrize("sigma", [1.0, 0.6, 2.5])
def test_gaussian_filter_matches_scipy(shape, sigma):
    values = np.random.default_rng(shape[0] * 31 + shape[1]).uniform(0, 255, shape)
    expected = scipy_ndimage.gaussian_filter(values, sigma)
    assert np.abs(ndimage.gaussian_filter(values, sigma) - expected).max() < 1e-9


@pytest.mark.parametrize("iterations", [1, 2, 3])
def test_binary_dilation_matches_scipy(iterations):
    mask = np.random.default_rng(iterations).random((37, 41)) > 0.93
    mask[0, 0] = mask[-1, -1] = True  # the corners: nothing may grow beyond the border
    assert np.array_equal(ndimage.binary_dilation(mask, iterations=iterations),
                          scipy_ndimage.binary_dilation(mask, iterations=iterations))


@pytest.mark.parametrize("density", [0.0, 0.3, 0.5, 0.6, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_sizes_and_boxes_match_scipy(density, seed):
    mask = np.random.default_rng(seed).random((60, 75)) < density
    expected, count = scipy_ndimage.label(mask)
    ours = ndimage.label(mask)
    assert ours.count == count and np.array_equal(ours.labels, expected)
    assert np.array_equal(ours.sizes, scipy_ndimage.sum_labels(mask, expected, index=np.arange(1, count + 1)))
    assert ours.boxes == scipy_ndimage.find_objects(expected)


def test_labels_of_shapes_that_merge_late():
    """A U and a spiral: runs that only join further down, the case a one-pass labelling gets wrong."""
    mask = np.zeros((12, 12), dtype=bool)
    mask[1:10, 1] = mask[1:10, 4] = mask[9, 1:5] = True  # U: two arms joined at the bottom
    mask[1, 6:11] = mask[1:11, 10] = mask[10, 6:11] = mask[4:11, 6] = mask[4, 6:9] = True  # a hook
    expected, count = scipy_ndimage.label(mask)
    ours = ndimage.label(mask)
    assert ours.count == count == 2 and np.array_equal(ours.labels, expected)
