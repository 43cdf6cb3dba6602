"""The layout of an artifacts directory, shared by the trainer (writer) and the inference service (reader).

    <artifacts>/latest.json                    manifest naming the current best model
    <artifacts>/metrics.json                   metrics of the latest finished training run
    <artifacts>/models/<version>.pt            published checkpoints (never modified after publishing)
    <artifacts>/models/<version>.onnx          the same model as an ONNX graph (shared/onnx_export.py)
    <artifacts>/models/<version>.graph.json    the graph's card: version, temperature, a probe (shared/graph_card.py)
    <artifacts>/models/<version>.metrics.json  the metrics that belong to that checkpoint
    <artifacts>/run/last.pt, run/best.pt       the trainer's working state, for resuming

Publishing writes the checkpoint, its graph, the graph's card and its metrics completely first and only then
replaces the manifest, each step atomically, so a reader that follows the manifest never reaches a partial file.

Retention (``prune_models``, run by the trainer after it publishes): the newest KEEP_MODELS published models stay,
and so does the one the manifest names, every one a running inference service reports serving
(``shared.serving``) and the pinned one (``shared.pin``); the others are deleted, checkpoint first, then its metrics.

Publishing can stop short of the manifest (``make_latest=False``: the trainer's PUBLISH_IF=better gate kept the
model out): the model is then on disk and listed, and latest.json still names the one before it.
"""

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.atomic import write_json_atomic
from shared.pin import pinned_checkpoint
from shared.serving import served_checkpoints

log = logging.getLogger(__name__)

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


def publish_model(artifacts_dir: str | Path, checkpoint: dict[str, Any], metrics: dict[str, Any], *,
                  graph: bool = True, make_latest: bool = True) -> PublishedModel:
    """Publish a checkpoint (a ``shared.checkpoint`` dict), with its ONNX graph and card unless ``graph`` is False,
    and make it the manifest's model unless ``make_latest`` is False (then it is on disk beside the others, not
    served)."""
    # torch: only a writer (the trainer) publishes; readers of this module (the torch-free server) never get here
    from shared.checkpoint import Checkpoint, save_checkpoint
    from shared.onnx_export import write_graph

    artifacts_dir = Path(artifacts_dir)
    version = checkpoint["model_version"]
    checkpoint_rel = Path("models") / f"{version}.pt"
    metrics_rel = Path("models") / f"{version}.metrics.json"
    save_checkpoint(artifacts_dir / checkpoint_rel, checkpoint)  # first: retention reads the rest as its leftovers
    if graph:
        checkpoint_path = artifacts_dir / checkpoint_rel
        write_graph(Checkpoint(checkpoint_path, checkpoint).build_model("cpu"), checkpoint_path, version,
                    checkpoint.get("temperature"))
    write_json_atomic(artifacts_dir / metrics_rel, metrics)
    write_json_atomic(artifacts_dir / "metrics.json", metrics)
    manifest = {
        "model_version": version,
        "checkpoint": checkpoint_rel.as_posix(),
        "metrics": metrics_rel.as_posix(),
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if make_latest:
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


def prune_models(artifacts_dir: str | Path, keep: int, serving_dir: str | Path | None = None) -> list[str]:
    """Delete published models beyond the newest ``keep`` (by publication time), except the manifest's, every one a
    fresh record in ``serving_dir`` names and the one pinned there; ``keep`` 0 keeps everything. Returns the
    versions deleted.

    A model is its checkpoint ``models/<version>.pt`` and every other ``models/<version>.*`` file (its metrics, any
    other form of it). Crash-safe: the checkpoint goes first, then the rest (a reader that follows the manifest
    never meets any of them), and files whose checkpoint is gone are deleted by the next run, so an interrupted
    prune is finished later. Publishing writes the checkpoint first, so a model being published is never taken
    for such a leftover.
    """
    models = Path(artifacts_dir) / "models"
    if keep <= 0 or not models.is_dir():
        return []
    manifest = read_manifest(artifacts_dir)
    protected = {manifest.checkpoint_path.name} if manifest is not None else set()
    serving = Path(serving_dir) if serving_dir else None
    protected |= {Path(name).name for name in served_checkpoints(serving)}
    pinned = pinned_checkpoint(serving)
    if pinned is not None:
        protected.add(Path(pinned).name)
    newest_first = sorted(models.glob("*.pt"), key=lambda path: path.stat().st_mtime_ns, reverse=True)
    deleted = []
    try:
        for checkpoint in newest_first[keep:]:
            if checkpoint.name not in protected:
                checkpoint.unlink(missing_ok=True)
                deleted.append(checkpoint.stem)
        live = [checkpoint.stem for checkpoint in models.glob("*.pt")]
        for path in models.iterdir():  # the rest of each deleted model, and what an interrupted prune left
            if path.is_file() and path.suffix != ".pt" and not path.name.startswith(".") and \
                    not any(path.name.startswith(f"{stem}.") for stem in live):
                path.unlink(missing_ok=True)
    except OSError as error:  # e.g. a read-only folder: keeping too much is no reason to fail a publish
        log.warning("retention: could not delete old models in %s: %s", models, error)
    if deleted:
        log.info("retention: deleted %d published model(s) beyond the newest %d: %s", len(deleted), keep,
                 ", ".join(deleted))
    return deleted
