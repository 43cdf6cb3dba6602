"""Give every published model its ONNX graph and graph card (how models published before cards get theirs).

    python -m services.trainer.cards --artifacts-dir /app/artifacts        (in the trainer image)
    python -m services.trainer.cards --artifacts-dir models/default

The torch-free inference image serves a model only with its graph and card (``shared.graph_card``); a model
published before cards existed has neither or only the graph. For each ``models/<version>.pt`` without a card
this writes the graph and the card anew, each atomically, from the checkpoint itself; a model
that has its card is left alone, so running it again changes nothing. The trainer runs it at every start, so
`docker compose up` after an upgrade migrates the artifacts volume by itself; the inference service retries a
model it refused once its files change.
"""

import argparse
import logging
from pathlib import Path

from shared.checkpoint import CheckpointError, load_checkpoint
from shared.graph_card import CardError, card_path, read_card
from shared.onnx_export import write_graph

log = logging.getLogger(__name__)


def add_missing_cards(artifacts_dir: Path) -> list[str]:
    """Write the graph and card of every published checkpoint that lacks a (readable) card; the versions done."""
    done = []
    for checkpoint_path in sorted((Path(artifacts_dir) / "models").glob("*.pt")):
        try:
            read_card(card_path(checkpoint_path))
            continue
        except CardError:
            pass
        try:
            checkpoint = load_checkpoint(checkpoint_path)
            write_graph(checkpoint.build_model("cpu"), checkpoint_path, checkpoint.model_version,
                        checkpoint.data.get("temperature"))
        except (CheckpointError, OSError) as error:  # one bad file must not stop the others (or the trainer)
            log.warning("cannot write the graph card of %s: %s", checkpoint_path, error)
            continue
        log.info("wrote the graph and card of %s", checkpoint_path)
        done.append(checkpoint.model_version)
    return done


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts-dir", type=Path, required=True, help="a folder with models/<version>.pt")
    args = parser.parse_args(argv)
    done = add_missing_cards(args.artifacts_dir)
    print(f"{len(done)} model(s) given a graph card in {args.artifacts_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
