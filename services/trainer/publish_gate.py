"""PUBLISH_IF: whether a finished run becomes latest.json's model, or is only kept on disk beside it.

* ``always``: every finished run becomes latest, whatever its accuracy (the behaviour before this gate).
* ``better`` (the default): only a run at least as accurate as the model it would replace. A two-epoch experiment
  (about 88 %) must not replace a 93 % model everywhere within seconds; the first model always goes through, and a
  model kept out is still published to ``models/`` (listed by GET /models with the reason, pinnable, promotable
  with ``python -m services.trainer.promote``).

Judged without the test set, on images neither model trained on: the validation split. Both models must have been
validated on the *same* images, so the split has its own seed (SPLIT_SEED, fixed across runs whatever SEED says),
and every checkpoint records which images its split held (``validation_split``: the seed, the size and a SHA-256 of
the images and labels). The latest model is loaded and evaluated here on this run's split; its recorded figures
are not trusted, they may come from another split. Both models picked their best epoch on these images, so the
figures favour each a little, and equally: a fair comparison, not an unbiased estimate (the test set gives that).

A latest model validated on other images (another SPLIT_SEED or VAL_SIZE, other data) cannot be judged this way:
under ``better`` the run is then kept out, and the reason says so and how to serve it anyway. A gate that cannot
judge does not pass; it never replaces a model by one it could not compare.
"""

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from services.trainer.evaluation import evaluate
from shared.artifacts import read_manifest
from shared.checkpoint import CheckpointError, load_checkpoint
from shared.data import Split

log = logging.getLogger("trainer")

PublishPolicy = Literal["always", "better"]


@dataclass(frozen=True)
class Decision:
    """The gate's verdict, recorded in the model's metrics as ``publication`` (GET /models shows it); when it was
    made is the model's ``created_at``."""

    policy: PublishPolicy
    latest: bool  # made latest.json's model
    reason: str
    val_accuracy: float  # this run's, on its validation split
    compared_with: dict[str, Any] | None = None  # the latest model judged on the same split: version, val_accuracy

    def record(self) -> dict[str, Any]:
        return {"policy": self.policy, "latest": self.latest, "reason": self.reason,
                "val_accuracy": self.val_accuracy, "compared_with": self.compared_with}


def split_record(val: Split, split_seed: int) -> dict[str, Any]:
    """Which images the validation split holds: what two models must share to be compared."""
    digest = hashlib.sha256(val.images.contiguous().numpy().tobytes())
    digest.update(val.labels.contiguous().numpy().tobytes())
    return {"seed": split_seed, "size": len(val), "sha256": digest.hexdigest()}


def decide(policy: PublishPolicy, artifacts_dir: Path, val: Split, split: dict[str, Any], val_accuracy: float,
           device: torch.device) -> Decision:
    """Whether this run (``val_accuracy`` on ``val``, described by ``split``) becomes latest under ``policy``."""
    if policy == "always":
        return Decision(policy, True, "PUBLISH_IF=always: every finished run becomes latest", val_accuracy)
    incumbent = read_manifest(artifacts_dir)
    if incumbent is None:
        return Decision(policy, True, "the first model published here", val_accuracy)
    try:
        checkpoint = load_checkpoint(incumbent.checkpoint_path, map_location=device)
    except CheckpointError as error:
        return Decision(policy, True, f"the latest model {incumbent.model_version} cannot be loaded ({error}): "
                                      "any model that loads is better", val_accuracy)
    mismatch = _split_mismatch(checkpoint.data, split)
    if mismatch:
        return Decision(policy, False, f"cannot be judged against the latest model {incumbent.model_version}: "
                                       f"{mismatch}, so no images are known that neither model trained on. It is on "
                                       "disk: pin it (POST /models/<version>/pin) or make it latest "
                                       "(python -m services.trainer.promote <version>)", val_accuracy)
    theirs = evaluate(checkpoint.build_model(device).to(memory_format=torch.channels_last), val, device).accuracy
    compared = {"model_version": incumbent.model_version, "val_accuracy": theirs}
    if val_accuracy >= theirs:
        return Decision(policy, True, f"validation accuracy {val_accuracy:.4f} >= {theirs:.4f} of the latest model "
                                      f"{incumbent.model_version} on the same {len(val)} images", val_accuracy,
                        compared)
    return Decision(policy, False, f"validation accuracy {val_accuracy:.4f} < {theirs:.4f} of the latest model "
                                   f"{incumbent.model_version} on the same {len(val)} images",
                    val_accuracy, compared)


def _split_mismatch(incumbent: dict[str, Any], split: dict[str, Any]) -> str | None:
    """Why the latest model's validation images are not this run's, or None when they are the same."""
    recorded = incumbent.get("validation_split")
    if isinstance(recorded, dict) and recorded.get("sha256"):
        if recorded["sha256"] == split["sha256"]:
            return None
        return (f"it was validated on other images (split seed {recorded.get('seed')}, {recorded.get('size')} images; "
                f"this run: split seed {split['seed']}, {split['size']} images)")
    # A checkpoint from before splits were recorded: its recipe says how its split was drawn (the seed was SEED then).
    recipe = incumbent.get("hyperparameters") or {}
    seed, size = recipe.get("split_seed", recipe.get("seed")), recipe.get("val_size")
    if (seed, size) == (split["seed"], split["size"]):
        return None
    return (f"its recipe drew another validation split (split seed {seed}, {size} images; this run: split seed "
            f"{split['seed']}, {split['size']} images)")
