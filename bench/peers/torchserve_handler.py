"""A TorchServe 0.12 handler for the project's checkpoint (``python -m bench serving_peers`` archives it).

The TorchServe way: ``BaseHandler`` loads the serialized file named in the archive; ``preprocess`` decodes each
request's PNG (the ``data`` field of the multipart body) with PIL, ``inference`` runs PyTorch eager on the batch,
``postprocess`` answers each request the top-3 classes with the model's temperature applied. The project's
``shared`` package (model, checkpoint loader, preprocessing) comes from FMNIST_REPO, so the network, weights and
normalisation are exactly the project's.
"""

import io
import os
import sys

import torch
from PIL import Image
from ts.torch_handler.base_handler import BaseHandler

sys.path.insert(0, os.environ["FMNIST_REPO"])

from shared.checkpoint import load_checkpoint  # noqa: E402
from shared.classes import CLASS_NAMES  # noqa: E402
from shared.preprocess import image_to_tensor  # noqa: E402


class FashionMNISTHandler(BaseHandler):
    def initialize(self, context) -> None:
        directory = context.system_properties.get("model_dir")
        self.checkpoint = load_checkpoint(os.path.join(directory, context.manifest["model"]["serializedFile"]))
        self.model = self.checkpoint.build_model("cpu")
        self.initialized = True

    def preprocess(self, data: list[dict]) -> torch.Tensor:
        images = []
        for row in data:
            payload = row.get("data") or row.get("body") or row.get("file")
            images.append(image_to_tensor(Image.open(io.BytesIO(payload)).convert("L")))
        return torch.stack(images)

    def inference(self, batch: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        with torch.inference_mode():
            return torch.softmax(self.model(batch) / self.checkpoint.temperature, dim=1)

    def postprocess(self, probabilities: torch.Tensor) -> list[dict]:
        answers = []
        for row in probabilities:
            top = torch.topk(row, 3)
            answers.append({"class_id": int(top.indices[0]), "label": CLASS_NAMES[int(top.indices[0])],
                            "top_k": [{"class_id": int(i), "probability": float(p)}
                                      for p, i in zip(top.values, top.indices, strict=True)]})
        return answers
