"""The shipped default model's graph and card still match today's code: a change to ``shared/preprocess.py`` (or
to the network in ``shared/model.py``) without a new export of ``models/default`` fails here, fast, rather than as
a server that finds the graph disagreeing with its checkpoint and falls back to torch.

The card (``shared.graph_card``) keeps a probe batch and the logits the checkpoint answered for it when the graph was
exported; the graph carries the preprocessing it was traced with. Both are compared with the checkpoint run through
torch with the preprocessing as it is now.
"""

import numpy as np
import pytest
import torch

from services.inference.app.backends import OnnxBackend
from shared.artifacts import read_manifest
from shared.checkpoint import load_checkpoint
from shared.graph_card import PROBE_TOLERANCE, GraphCard, card_path, graph_path, read_card
from shared.preprocess import pixels_to_batch

RE_EXPORT = ("re-export the default model's graph and card from its checkpoint: delete "
             "models/default/models/*.graph.json, then run `python -m services.trainer.cards --artifacts-dir "
             "models/default` (no make target rewrites them in place; `make default-model` republishes a model "
             "trained under ARTIFACTS_DIR, graph and card included). A changed preprocessing usually means "
             "retraining too: the checkpoint's weights learned the old one")


@pytest.fixture(scope="module")
def default_model(default_model_dir) -> tuple[torch.nn.Module, GraphCard, OnnxBackend]:
    checkpoint_path = read_manifest(default_model_dir).checkpoint_path
    model = load_checkpoint(checkpoint_path).build_model("cpu")
    return model, read_card(card_path(checkpoint_path)), OnnxBackend(graph_path(checkpoint_path), threads=1)


def _torch_logits(model: torch.nn.Module, pixels: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(pixels_to_batch(torch.from_numpy(pixels.copy()))).numpy()  # the card's pixels are read-only


def test_the_checkpoint_answers_the_cards_probe_under_todays_preprocessing(default_model):
    model, card, _ = default_model
    difference = float(np.abs(_torch_logits(model, card.probe_pixels) - card.probe_logits).max())
    assert difference <= PROBE_TOLERANCE, (
        f"the default model's checkpoint, preprocessed by today's shared/preprocess.py, answers its card's probe "
        f"differently from when models/default was exported (logits differ by {difference:.3g}): {RE_EXPORT}")


def test_the_graph_answers_what_the_checkpoint_does_under_todays_preprocessing(default_model):
    model, card, graph = default_model
    rng = np.random.default_rng(18)
    gradient = np.tile(np.linspace(0, 255, 28, dtype=np.uint8), (28, 1))
    images = np.concatenate([card.probe_pixels, gradient[None], gradient.T[None],
                             rng.integers(0, 256, (8, 28, 28), dtype=np.uint8)])
    difference = float(np.abs(graph.logits(images) - _torch_logits(model, images)).max())
    assert difference <= PROBE_TOLERANCE, (
        f"the default model's ONNX graph (its preprocessing traced at export) and its checkpoint under today's "
        f"shared/preprocess.py disagree (logits differ by {difference:.3g}): {RE_EXPORT}")
