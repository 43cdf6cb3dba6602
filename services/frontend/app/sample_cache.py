"""The "random sample" flow: a test image, its true label, the model's prediction and its explanation (the heat map
of the pixels the answer rests on), cached per model version.

A cached entry lives under ``<prefix>sample:<model_version>:<index>``, so a newly loaded model never shows an old
model's prediction: the version comes from the (briefly cached) /metrics, and if the API answers with a newer
version than that, the entry is stored under the version that actually made the prediction.
"""

import random
from typing import Any

from services.frontend.app.api_client import InferenceClient, split_explanation
from services.frontend.app.cache import Cache
from services.frontend.app.metrics import cached_metrics, forget_metrics
from services.frontend.app.mime import data_uri
from services.frontend.app.versions import forget_versions


class SampleNotFound(Exception):
    """No such test image (index out of range), or the API serves none at all."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SampleService:
    def __init__(self, api: InferenceClient, cache: Cache, sample_ttl_s: float, metrics_ttl_s: float,
                 top_k: int, rng: random.Random | None = None) -> None:
        self.api, self.cache = api, cache
        self.sample_ttl_s, self.metrics_ttl_s = sample_ttl_s, metrics_ttl_s
        self.top_k = top_k
        self.rng = rng or random.Random()  # noqa: S311 - picks a test image to show, not a secret

    def key(self, model_version: str, index: int) -> str:
        return self.cache.key("sample", model_version, index)

    def get(self, index: int | None = None) -> tuple[dict[str, Any], bool]:
        """The sample view (random when ``index`` is None) and whether it came from the cache."""
        metrics = cached_metrics(self.api, self.cache, self.metrics_ttl_s)
        available = int((metrics.get("samples") or {}).get("available") or 0)
        if available <= 0:
            raise SampleNotFound("The prediction service has no test images to show (no FashionMNIST test set in "
                                 "its DATA_DIR). Upload or draw a picture instead.")
        if index is None:
            index = self.rng.randrange(available)
        elif not 0 <= index < available:
            raise SampleNotFound(f"There is no test image {index}: pick an index from 0 to {available - 1}.")
        version = str(metrics["model"]["version"])
        record = self.cache.get_json(self.key(version, index))
        if record is not None:
            self.cache.count(hit=True)
            return record, True
        self.cache.count(hit=False)
        record = self._build(index)
        if record["model_version"] != version:
            forget_metrics(self.cache)  # the API reloaded a model: refresh the page's metrics too
            forget_versions(self.cache)
        self.cache.set_json(self.key(record["model_version"], index), record, self.sample_ttl_s)
        return record, False

    def _build(self, index: int) -> dict[str, Any]:
        """One API call: the image, its true label, and the model's prediction and explanation. The 28x28 PNG is
        shown as the API sends it; CSS scales it up (``image-rendering: pixelated``: crisp squares)."""
        sample = self.api.explained_sample(index, top_k=self.top_k)
        prediction, explanation = split_explanation(sample["prediction"])
        return {
            "index": index,
            "true_class_id": sample["class_id"],
            "true_label": sample["label"],
            "image": data_uri("image/png", sample["image_png_base64"]),
            "prediction": prediction,
            "explanation": explanation,
            "correct": prediction["class_id"] == sample["class_id"],
            "model_version": str(prediction["model_version"]),
        }
