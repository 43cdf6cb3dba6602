"""Give a published model its temperature without retraining (how the shipped default model got its own).

    python -m services.trainer.recalibrate --model-dir models/default --data-dir ../shared/data
    make calibrate DATA_DIR=../shared/data

The validation split is rebuilt from the checkpoint's own SPLIT_SEED (SEED for checkpoints from before it) and
VAL_SIZE with ``shared.data.train_val_split``,
exactly as training carved it out; the temperature is fitted on it (``fit_temperature``), and the same weights are
republished with the temperature and a ``calibration`` block in their metrics, under a new version (the version
hash covers the temperature). Every write is atomic and the manifest moves last; then the old checkpoint and
its metrics are removed, so the directory still holds exactly one model. Running it again changes nothing.
"""

import argparse
import json
import logging
from datetime import datetime
from pathlib import Path

from services.trainer.evaluation import evaluate
from services.trainer.fit_temperature import calibration_report
from shared.artifacts import PublishedModel, publish_model, read_manifest
from shared.checkpoint import CheckpointError, load_checkpoint, make_model_version
from shared.data import DatasetNotFoundError, load_split, train_val_split
from shared.graph_card import card_path, graph_path

log = logging.getLogger("recalibrate")


class RecalibrationError(RuntimeError):
    """The model directory or the data cannot give a trustworthy temperature."""


def recalibrate(model_dir: Path, data_dir: Path) -> tuple[PublishedModel, PublishedModel]:
    """Republish the model ``model_dir`` serves with its fitted temperature; (old, new) publication."""
    old = read_manifest(model_dir)
    if old is None:
        raise RecalibrationError(f"{model_dir} publishes no model (no readable latest.json)")
    checkpoint = load_checkpoint(old.checkpoint_path)
    metrics = json.loads(old.metrics_path.read_text(encoding="utf-8"))
    recipe = checkpoint.data["hyperparameters"]
    split_seed = int(recipe.get("split_seed", recipe["seed"]))
    _, val = train_val_split(load_split(data_dir, train=True, download=False), int(recipe["val_size"]), split_seed)
    model = checkpoint.build_model("cpu")
    tested = evaluate(model, load_split(data_dir, train=False, download=False), "cpu")
    if abs(tested.accuracy - metrics["test_accuracy"]) > 1e-9:
        raise RecalibrationError(f"test accuracy {tested.accuracy:.4f} here, {metrics['test_accuracy']:.4f} in "
                               f"{old.metrics_path}: {data_dir} is not the data this model was tested on")
    temperature, calibration = calibration_report(evaluate(model, val, "cpu"), tested)
    calibration["fitted_by"] = (f"services.trainer.recalibrate after training, on the validation split rebuilt from "
                                f"SPLIT_SEED={split_seed} and VAL_SIZE={recipe['val_size']}")
    version = make_model_version(checkpoint.data["state_dict"], datetime.fromisoformat(checkpoint.data["created_at"]),
                                 temperature)
    if version == old.model_version:  # already published with this very temperature
        return old, old
    metrics.update(calibration=calibration, model_version=version)
    had_run_metrics = (model_dir / "metrics.json").exists()
    new = publish_model(model_dir, {**checkpoint.data, "temperature": temperature, "model_version": version}, metrics)
    if not had_run_metrics:  # models/default keeps only the copy that belongs to the checkpoint (see export.py)
        (model_dir / "metrics.json").unlink()
    if new.checkpoint_path != old.checkpoint_path:
        old.checkpoint_path.unlink(missing_ok=True)
        graph_path(old.checkpoint_path).unlink(missing_ok=True)
        card_path(old.checkpoint_path).unlink(missing_ok=True)
        old.metrics_path.unlink(missing_ok=True)
    return old, new


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=Path("models/default"),
                        help="directory with latest.json (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"),
                        help="torchvision root holding FashionMNIST/raw/ (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        old, new = recalibrate(args.model_dir, args.data_dir)
    except (RecalibrationError, DatasetNotFoundError, CheckpointError, OSError) as error:
        log.error("%s", error)
        return 2
    calibration = json.loads(new.metrics_path.read_text(encoding="utf-8"))["calibration"]
    before, after = calibration["test"]["before"], calibration["test"]["after"]
    log.info("%s -> %s: temperature %.4f; test ECE %.4f -> %.4f, NLL %.4f -> %.4f", old.model_version,
             new.model_version, calibration["temperature"], before["ece"], after["ece"], before["nll"], after["nll"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
