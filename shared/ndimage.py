"""The four scipy.ndimage operations ``shared.picture`` needs, in numpy alone.

scipy is 140 MB installed, more than the whole CPU inference image may add to its base (ONNX Runtime, numpy and
Pillow already take most of it), and the photo preparation used only these. Each one gives scipy's answer for
the arguments used here (tests/shared/test_ndimage.py compares them with scipy's on random inputs):

* ``gaussian_filter``: scipy's default mode ``reflect`` (the edge pixel repeated: numpy's ``symmetric``) and
  ``truncate=4.0``, as two 1-D passes;
* ``binary_dilation``: the 4-neighbour cross, repeated ``iterations`` times, nothing beyond the border;
* ``label``: 4-connected components, numbered in raster order of their first pixel, with their sizes and boxes
  (what ``ndimage.label``, ``sum_labels`` and ``find_objects`` give), found on the runs of each row with a
  union-find, so the Python loop runs over runs, not pixels.
"""

from dataclasses import dataclass

import numpy as np

TRUNCATE = 4.0  # scipy's default: the kernel reaches 4 sigma


def gaussian_filter(values: np.ndarray, sigma: float) -> np.ndarray:
    """2-D Gaussian smoothing (float64), the same as ``scipy.ndimage.gaussian_filter(values, sigma)``."""
    radius = int(TRUNCATE * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    result = np.asarray(values, dtype=np.float64)
    for axis in (0, 1):
        result = _correlate_1d(result, kernel, radius, axis)
    return result


def _correlate_1d(values: np.ndarray, kernel: np.ndarray, radius: int, axis: int) -> np.ndarray:
    pad = [(0, 0), (0, 0)]
    pad[axis] = (radius, radius)
    padded = np.pad(values, pad, mode="symmetric")
    length = values.shape[axis]
    out = np.zeros_like(values)
    for i, weight in enumerate(kernel):
        out += weight * (padded[i:i + length] if axis == 0 else padded[:, i:i + length])
    return out


def binary_dilation(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """``scipy.ndimage.binary_dilation(mask, iterations=n)`` with its default (cross-shaped) structure."""
    grown = np.asarray(mask, dtype=bool)
    for _ in range(iterations):
        step = grown.copy()
        step[1:] |= grown[:-1]
        step[:-1] |= grown[1:]
        step[:, 1:] |= grown[:, :-1]
        step[:, :-1] |= grown[:, 1:]
        grown = step
    return grown


@dataclass(frozen=True)
class Components:
    """Connected components: ``labels`` (0 = background, 1..count), each one's pixel count and box."""

    labels: np.ndarray  # int32, the mask's shape
    count: int
    sizes: np.ndarray  # (count,) pixels per component, component i + 1 at index i
    boxes: list[tuple[slice, slice]]  # (rows, cols) per component, as ``ndimage.find_objects``


def label(mask: np.ndarray) -> Components:
    """4-connected components of a 2-D boolean mask, numbered like ``scipy.ndimage.label``."""
    mask = np.asarray(mask, dtype=bool)
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    rows_start, starts = np.nonzero(edges == 1)  # runs [start, end) per row, in raster order
    _, ends = np.nonzero(edges == -1)
    parent = list(range(len(starts)))

    def root(run: int) -> int:
        while parent[run] != run:
            parent[run] = parent[parent[run]]
            run = parent[run]
        return run

    row_first = np.searchsorted(rows_start, np.arange(height + 1))  # runs of row r: row_first[r]:row_first[r+1]
    for row in range(1, height):
        above = range(row_first[row - 1], row_first[row])
        here = range(row_first[row], row_first[row + 1])
        i = j = 0
        while i < len(above) and j < len(here):  # two sorted lists of runs: merge the overlapping ones
            a, b = above[i], here[j]
            if starts[a] < ends[b] and starts[b] < ends[a]:
                ra, rb = root(a), root(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)  # the earlier run stays the root: raster numbering
            if ends[a] <= ends[b]:
                i += 1
            else:
                j += 1
    roots = np.array([root(run) for run in range(len(starts))], dtype=np.int64)
    unique_roots, component = np.unique(roots, return_inverse=True)  # roots ascend in raster order
    count = len(unique_roots)
    labels = np.zeros((height, width), dtype=np.int32)
    for run, (row, start, end) in enumerate(zip(rows_start, starts, ends, strict=True)):
        labels[row, start:end] = component[run] + 1
    lengths = ends - starts
    sizes = np.bincount(component, weights=lengths, minlength=count)
    boxes = []
    for index in range(count):
        runs = component == index
        boxes.append((slice(int(rows_start[runs].min()), int(rows_start[runs].max()) + 1),
                      slice(int(starts[runs].min()), int(ends[runs].max()))))
    return Components(labels=labels, count=count, sizes=sizes, boxes=boxes)
