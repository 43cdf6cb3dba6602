"""The checkpoint format: one self-describing file per model, loadable with ``weights_only=True``.

A checkpoint holds everything needed to rebuild, serve or resume a model: the state_dict, the architecture
and its config, the class names, the hyperparameters, the epoch, optimizer and scheduler state, a metrics
summary, a model version id, the creation time and, once published, the ``temperature`` that calibrates its
probabilities (shared/temperature.py; checkpoints from before calibration have none and serve with T = 1).
Only plain types and tensors are stored, so loading never unpickles arbitrary objects. ``load_checkpoint`` is
the one loader every service uses; it rejects corrupt, truncated and foreign files with a ``CheckpointError``
that says what is wrong.
"""

import hashlib
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from shared.atomic import write_atomic
from shared.classes import CLASS_NAMES
from shared.model import ARCHITECTURE, FashionMNISTModelV2, ModelConfig

FORMAT = "fashion-mnist-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = (
    "format", "format_version", "architecture", "model_config", "class_names", "state_dict",
    "hyperparameters", "epoch", "metrics", "model_version", "created_at",
)


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint of this project."""


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    data: dict[str, Any]

    @property
    def model_version(self) -> str:
        return self.data["model_version"]

    @property
    def class_names(self) -> list[str]:
        return list(self.data["class_names"])

    @property
    def calibrated(self) -> bool:
        return self.data.get("temperature") is not None

    @property
    def temperature(self) -> float:
        """Divide the logits by this before the softmax; 1.0 (the raw softmax) for an uncalibrated checkpoint."""
        return float(self.data["temperature"]) if self.calibrated else 1.0

    def build_model(self, device: str | torch.device = "cpu") -> FashionMNISTModelV2:
        """The model with these weights, in eval mode, on ``device``."""
        model = FashionMNISTModelV2(ModelConfig(**self.data["model_config"]))
        try:
            model.load_state_dict(self.data["state_dict"])
        except RuntimeError as error:
            raise CheckpointError(f"{self.path}: weights do not fit {ARCHITECTURE}: {error}") from error
        return model.to(device).eval()


def make_model_version(state_dict: dict[str, torch.Tensor], created_at: datetime,
                       temperature: float | None = None) -> str:
    """A readable, unique id: creation time plus a short hash of the weights and the temperature (so the same
    weights recalibrated are a new version: every cache keyed by version then drops the old probabilities)."""
    digest = hashlib.sha256()
    for name, tensor in state_dict.items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    if temperature is not None:
        digest.update(f"temperature={float(temperature)!r}".encode())
    return f"{created_at:%Y%m%d-%H%M%S}-{digest.hexdigest()[:8]}"


def build_checkpoint(
    model: FashionMNISTModelV2,
    *,
    hyperparameters: dict[str, Any],
    epoch: int,
    metrics: dict[str, Any],
    optimizer_state: dict[str, Any] | None = None,
    scheduler_state: dict[str, Any] | None = None,
    temperature: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    created_at = datetime.now(UTC)
    state_dict = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": ARCHITECTURE,
        "model_config": model.config.to_dict(),
        "class_names": list(CLASS_NAMES),
        "state_dict": state_dict,
        "hyperparameters": dict(hyperparameters),
        "epoch": int(epoch),
        "optimizer_state": optimizer_state,
        "scheduler_state": scheduler_state,
        "metrics": dict(metrics),
        "model_version": make_model_version(state_dict, created_at, temperature),
        "created_at": created_at.isoformat(timespec="seconds"),
        **({} if temperature is None else {"temperature": float(temperature)}),
        **(extra or {}),
    }


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> None:
    """Write atomically: serialise in memory, then temporary file + fsync + rename."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_atomic(path, lambda handle: handle.write(buffer.getvalue()))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or truncated files
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or truncated?): {error}") from error
    _validate(path, data)
    return Checkpoint(path=path, data=data)


def _validate(path: Path, data: Any) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} file (foreign checkpoint?)")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    if data["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {data['format_version']}, expected {FORMAT_VERSION}")
    if data["architecture"] != ARCHITECTURE:
        raise CheckpointError(f"{path}: architecture {data['architecture']!r}, expected {ARCHITECTURE!r}")
    if list(data["class_names"]) != list(CLASS_NAMES):
        raise CheckpointError(f"{path}: class names differ from FashionMNIST's")
    try:
        ModelConfig(**data["model_config"])
    except TypeError as error:
        raise CheckpointError(f"{path}: bad model_config: {error}") from error
    temperature = data.get("temperature")
    if temperature is not None and not (isinstance(temperature, float) and math.isfinite(temperature)
                                        and temperature > 0):
        raise CheckpointError(f"{path}: temperature must be a positive finite float, got {temperature!r}")
