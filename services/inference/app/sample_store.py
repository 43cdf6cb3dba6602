"""Real FashionMNIST test images for the web page's "try a sample" feature.

The test split is loaded in a background thread at startup, so a missing or slow data set never delays
serving predictions; until it is loaded (or when loading failed) the store raises ``SamplesUnavailable`` with the
reason (the data folder named by its setting, DATA_DIR: see ``redact``), and ``SampleNotFound`` for an index outside
the split; ``errors.py`` answers them as 503 ``samples_unavailable`` and 404 ``sample_not_found``.
"""

import base64
import io
import logging
import random
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from services.inference.app.redact import redact
from shared.classes import CLASS_NAMES
from shared.idx import load_arrays

log = logging.getLogger(__name__)


class SamplesUnavailable(RuntimeError):
    """The test images are not loaded (still loading, or loading failed); the message says which."""


class SampleNotFound(LookupError):
    """An index outside the test split."""


class SampleStore:
    def __init__(self, data_dir: Path, download: bool) -> None:
        self.data_dir, self.download = data_dir, download
        self._images: np.ndarray | None = None  # uint8 (N, 28, 28), once loaded
        self._labels: np.ndarray | None = None
        self._problem = "the test images are still loading"

    def start_loading(self) -> threading.Thread:
        thread = threading.Thread(target=self._load, name="samples-loader", daemon=True)
        thread.start()
        return thread

    def _load(self) -> None:
        try:
            images, labels = load_arrays(self.data_dir, train=False, download=self.download)
        except Exception as error:  # DatasetNotFoundError, or anything unexpected: never kill the server
            self._problem = f"test images could not be loaded: {redact(str(error), {'DATA_DIR': self.data_dir})}"
            log.warning("samples unavailable: %s", error)
            return
        self._images, self._labels = images, labels
        log.info("loaded %d test images from %s", len(labels), self.data_dir)

    @property
    def available(self) -> int:
        return 0 if self._labels is None else len(self._labels)

    def _require(self) -> np.ndarray:
        """The labels, once loaded (the images are set with them)."""
        if self._labels is None:
            raise SamplesUnavailable(self._problem)
        return self._labels

    def sample(self, index: int) -> dict:
        labels = self._require()
        if not 0 <= index < len(labels):
            raise SampleNotFound(f"sample index {index} is outside 0..{len(labels) - 1}")
        pixels = self._images[index]
        label = int(labels[index])
        return {"index": index, "class_id": label, "label": CLASS_NAMES[label], "pixels": pixels.tolist(),
                "image_png_base64": png_base64(pixels)}

    def pixels(self, index: int) -> np.ndarray:
        """The uint8 (28, 28) pixels of a test image (``sample`` has checked the index)."""
        self._require()
        return self._images[index]

    def random_samples(self, count: int) -> list[dict]:
        labels = self._require()
        return [self.sample(index) for index in random.sample(range(len(labels)), min(count, len(labels)))]


def png_base64(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
