"""The baseline a tutorial would write: FastAPI, ``UploadFile``, PIL, PyTorch eager, one process.

    NAIVE_MODEL_DIR=models/default uvicorn bench.peers.naive_fastapi:app --port 8100

Kept in the repository so ``python -m bench serving_peers`` can show what the project's serving path is worth
against it, on the same weights, temperature and PNG. It answers the same fields as the project's /predict for
one file, so the benchmark checks both the same way.
"""

import io
import os
from pathlib import Path

import torch
from fastapi import FastAPI, File, UploadFile
from PIL import Image

from shared.artifacts import read_manifest
from shared.checkpoint import load_checkpoint
from shared.classes import CLASS_NAMES
from shared.preprocess import image_to_tensor

checkpoint = load_checkpoint(read_manifest(Path(os.environ.get("NAIVE_MODEL_DIR", "models/default"))).checkpoint_path)
model = checkpoint.build_model("cpu")
torch.set_num_threads(int(os.environ.get("NAIVE_THREADS", "1")))
app = FastAPI(title="naive FashionMNIST baseline")


@app.post("/predict")
async def predict(file: UploadFile = File(...)) -> dict:
    image = Image.open(io.BytesIO(await file.read())).convert("L")
    with torch.inference_mode():
        logits = model(image_to_tensor(image).unsqueeze(0))
        probabilities = torch.softmax(logits / checkpoint.temperature, dim=1)[0]
    top = torch.topk(probabilities, 3)
    classes = [{"class_id": int(i), "label": CLASS_NAMES[int(i)], "probability": float(p)}
               for p, i in zip(top.values, top.indices, strict=True)]
    return {"class_id": classes[0]["class_id"], "label": classes[0]["label"], "confidence": classes[0]["probability"],
            "top_k": classes, "model_version": checkpoint.model_version}
