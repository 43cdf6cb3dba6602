"""Copy the model an artifacts directory publishes into another one (how ``models/default`` is made).

    python -m services.trainer.export --source bench/artifacts/default --target models/default

The target gets the same layout (manifest, checkpoint, metrics) and only that one model, so it can be
committed and served as the stack's default before any training has run.
"""

import argparse
import json
import shutil
from pathlib import Path

from shared.artifacts import publish_model, read_manifest
from shared.checkpoint import load_checkpoint


def export(source: Path, target: Path) -> str:
    published = read_manifest(source)
    if published is None:
        raise SystemExit(f"{source} publishes no model (no {source}/latest.json)")
    checkpoint = load_checkpoint(published.checkpoint_path)
    metrics = json.loads(published.metrics_path.read_text())
    shutil.rmtree(target, ignore_errors=True)
    publish_model(target, checkpoint.data, metrics)
    (target / "metrics.json").unlink()  # the copy under models/ is the one that belongs to the checkpoint
    return published.model_version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True, help="artifacts directory with latest.json")
    parser.add_argument("--target", type=Path, default=Path("models/default"), help="(default: %(default)s)")
    args = parser.parse_args()
    print(f"exported {export(args.source, args.target)} to {args.target}")


if __name__ == "__main__":
    main()
