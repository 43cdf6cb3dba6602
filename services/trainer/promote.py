"""Make a model on disk latest.json's model by hand: one that PUBLISH_IF=better kept out, or an older one.

    python -m services.trainer.promote 20261203-101500-1a2b3c4d [--artifacts-dir artifacts]
    make promote VERSION=20261203-101500-1a2b3c4d
    docker compose run --rm --no-deps trainer python -m services.trainer.promote 20261203-101500-1a2b3c4d

It writes the artifacts (the trainer's volume), so it runs where the trainer does; the inference services follow
the new manifest at their next poll unless a pin holds them (a pin is the serving side's own, reversible choice;
promoting changes what every later PUBLISH_IF=better run is judged against). The checkpoint must load first; the
manifest moves atomically, and the model's metrics record the promotion in their ``publication`` block.
"""

import argparse
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from shared.artifacts import MANIFEST_NAME, read_manifest
from shared.atomic import write_json_atomic
from shared.checkpoint import CheckpointError, load_checkpoint
from shared.pin import VERSION_PATTERN, checkpoint_of

log = logging.getLogger("promote")


class PromoteError(RuntimeError):
    """No such model, or one that does not load."""


def promote(artifacts_dir: Path, version: str) -> str | None:
    """Make ``version`` latest; returns the version latest.json named before (None when it named none)."""
    if not VERSION_PATTERN.fullmatch(version):
        raise PromoteError(f"{version!r} is not a model version (GET /models lists them)")
    checkpoint_rel, metrics_rel = checkpoint_of(version), f"models/{version}.metrics.json"
    checkpoint = load_checkpoint(artifacts_dir / checkpoint_rel)  # CheckpointError: missing, corrupt, foreign
    if checkpoint.model_version != version:
        raise PromoteError(f"{checkpoint_rel} holds model {checkpoint.model_version}, not {version}")
    before = read_manifest(artifacts_dir)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    metrics_path = artifacts_dir / metrics_rel
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PromoteError(f"{metrics_rel} is missing or unreadable: {error}") from error
    publication = metrics.get("publication") if isinstance(metrics.get("publication"), dict) else {}
    metrics["publication"] = {**publication, "latest": True, "promoted_at": now,
                              "reason": f"promoted by hand (python -m services.trainer.promote) over "
                                        f"{before.model_version if before else 'no model'}",
                              **({"gate_reason": publication["reason"]} if publication.get("reason") else {})}
    write_json_atomic(metrics_path, metrics)
    write_json_atomic(artifacts_dir / MANIFEST_NAME, {"model_version": version, "checkpoint": checkpoint_rel,
                                                      "metrics": metrics_rel, "published_at": now})
    return before.model_version if before else None


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("version", help="the model version to make latest (GET /models lists them)")
    parser.add_argument("--artifacts-dir", type=Path, default=Path(os.environ.get("ARTIFACTS_DIR", "artifacts")),
                        help="the trainer's artifacts (default: ARTIFACTS_DIR, else %(default)s)")
    args = parser.parse_args(argv)
    try:
        before = promote(args.artifacts_dir, args.version)
    except (PromoteError, CheckpointError) as error:
        log.error("%s", error)
        return 2
    log.info("latest.json now names %s (was %s)", args.version, before or "nothing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
