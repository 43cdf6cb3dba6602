"""The models on disk, for GET /models and for pinning: every published model in ARTIFACTS_DIR/models and the
shipped one in DEFAULT_MODEL_DIR/models.

A model is its checkpoint ``models/<version>.pt`` (``shared.artifacts``' layout) with its ``.metrics.json``
beside it; the figures listed come from that metrics file, so listing never loads a checkpoint. A version in both
folders is the published one. Nothing here builds a path from a client's text: a version is looked up among the
files that exist.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from shared.artifacts import PublishedModel, read_manifest
from shared.pin import checkpoint_of

Source = Literal["artifacts", "default"]


@dataclass(frozen=True)
class ModelOnDisk:
    version: str
    source: Source
    folder: Path  # ARTIFACTS_DIR or DEFAULT_MODEL_DIR

    @property
    def checkpoint(self) -> str:
        return checkpoint_of(self.version)

    @property
    def checkpoint_path(self) -> Path:
        return self.folder / self.checkpoint

    @property
    def metrics_path(self) -> Path:
        return self.folder / "models" / f"{self.version}.metrics.json"

    def metrics(self) -> dict[str, Any]:
        """Its metrics file, or {} when it has none (yet) or it is unreadable."""
        try:
            metrics = json.loads(self.metrics_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return metrics if isinstance(metrics, dict) else {}

    def published(self) -> PublishedModel:
        """As a manifest would name it; published_at from the manifest when it names this one, else the file's time."""
        manifest = read_manifest(self.folder)
        if manifest is not None and manifest.model_version == self.version and manifest.published_at:
            published_at = manifest.published_at
        else:
            published_at = _file_time(self.checkpoint_path)
        return PublishedModel(self.version, self.checkpoint_path, self.metrics_path, published_at)


class Catalog:
    """The two folders the API serves from, read afresh at every call (the trainer publishes and prunes meanwhile)."""

    def __init__(self, artifacts_dir: Path, default_model_dir: Path) -> None:
        self.folders: dict[Source, Path] = {"artifacts": artifacts_dir, "default": default_model_dir}

    def models(self) -> list[ModelOnDisk]:
        """Every model on disk, newest first (by the checkpoint's time), published ones before the shipped one."""
        found: dict[str, ModelOnDisk] = {}
        for source, folder in self.folders.items():
            checkpoints = sorted((folder / "models").glob("*.pt"), key=_mtime, reverse=True)
            for path in checkpoints:
                if not path.name.startswith("."):
                    found.setdefault(path.stem, ModelOnDisk(path.stem, source, folder))
        return list(found.values())

    def find(self, version: str) -> ModelOnDisk | None:
        return next((model for model in self.models() if model.version == version), None)

    def latest(self) -> str | None:
        """The version the API follows without a pin: ARTIFACTS_DIR/latest.json's, until it has one the default's."""
        for folder in self.folders.values():
            manifest = read_manifest(folder)
            if manifest is not None:
                return manifest.model_version
        return None


def summary(model: ModelOnDisk, metrics: dict[str, Any], *, latest: bool, served: bool, pinned: bool) -> dict:
    """One row of GET /models: what it is, how good it is, and where it stands."""
    publication = metrics.get("publication") if isinstance(metrics.get("publication"), dict) else None
    calibrated = _path(metrics, "calibration", "test", "after", "ece")
    return {
        "version": model.version, "source": model.source, "checkpoint": model.checkpoint,
        "created_at": metrics.get("created_at"), "published_at": model.published().published_at,
        "test_accuracy": metrics.get("test_accuracy"), "macro_f1": metrics.get("macro_f1"),
        "val_accuracy": metrics.get("val_accuracy"), "ece": calibrated,
        "latest": latest, "served": served, "pinned": pinned,
        # The trainer's publish gate (PUBLISH_IF): why a model is on disk but was never made latest.
        "kept_out": publication["reason"] if publication and publication.get("latest") is False else None,
        "publication": publication,
    }


def _path(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:  # deleted by retention meanwhile
        return 0


def _file_time(path: Path) -> str:
    mtime = _mtime(path)
    return datetime.fromtimestamp(mtime / 1e9, UTC).isoformat(timespec="seconds") if mtime else ""
