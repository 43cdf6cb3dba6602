"""The layout of an artifacts directory, shared by the trainer (writer) and the inference service (reader).

    <artifacts>/latest.json                    manifest naming the current best model
    <artifacts>/metrics.json                   metrics of the latest finished training run
    <artifacts>/models/<version>.pt            published checkpoints (never modified after publishing)
    <artifacts>/models/<version>.metrics.json  the metrics that belong to that checkpoint
    <artifacts>/run/last.pt, run/best.pt       the trainer's working state, for resuming

Publishing writes the checkpoint and its metrics completely first and only then replaces the manifest, each
step atomically, so a reader that follows the manifest never reaches a partial file.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.atomic import write_json_atomic
from shared.checkpoint import save_checkpoint

MANIFEST_NAME = "latest.json"


@dataclass(frozen=True)
class PublishedModel:
    """What a manifest names: a checkpoint, its metrics and its version."""

    model_version: str
    checkpoint_path: Path
    metrics_path: Path
    published_at: str


def run_dir(artifacts_dir: str | Path) -> Path:
    return Path(artifacts_dir) / "run"


def publish_model(artifacts_dir: str | Path, checkpoint: dict[str, Any], metrics: dict[str, Any]) -> PublishedModel:
    artifacts_dir = Path(artifacts_dir)
    version = checkpoint["model_version"]
    checkpoint_rel = Path("models") / f"{version}.pt"
    metrics_rel = Path("models") / f"{version}.metrics.json"
    save_checkpoint(artifacts_dir / checkpoint_rel, checkpoint)
    write_json_atomic(artifacts_dir / metrics_rel, metrics)
    write_json_atomic(artifacts_dir / "metrics.json", metrics)
    manifest = {
        "model_version": version,
        "checkpoint": checkpoint_rel.as_posix(),
        "metrics": metrics_rel.as_posix(),
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_json_atomic(artifacts_dir / MANIFEST_NAME, manifest)
    return _published(artifacts_dir, manifest)


def read_manifest(artifacts_dir: str | Path) -> PublishedModel | None:
    """The model the manifest names, or None when there is no (readable) manifest."""
    path = Path(artifacts_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        return _published(Path(artifacts_dir), manifest)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _published(artifacts_dir: Path, manifest: dict[str, Any]) -> PublishedModel:
    return PublishedModel(
        model_version=str(manifest["model_version"]),
        checkpoint_path=artifacts_dir / manifest["checkpoint"],
        metrics_path=artifacts_dir / manifest["metrics"],
        published_at=str(manifest.get("published_at", "")),
    )
