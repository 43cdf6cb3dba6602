"""PUBLISH_IF: the real trainer on tiny data decides whether a run becomes latest.json's model, on the validation
split both models share; a model kept out is on disk with the reason; promote makes it latest by hand."""

import json
import logging

import torch

from services.trainer.config import TrainSettings
from services.trainer.promote import main as promote_main
from services.trainer.publish_gate import _split_mismatch
from services.trainer.signals import StopFlag
from services.trainer.train import run
from shared.artifacts import read_manifest, run_dir
from shared.checkpoint import load_checkpoint, save_checkpoint
from tests.conftest import tiny_settings

# A run that cannot learn (the weights barely move from their initialisation) and one that learns the tiny data.
UNTRAINED = {"epochs": 1, "lr": 1e-9}
TRAINED = {"epochs": 4}


def train(data_dir, artifacts, **overrides) -> dict:
    """One real run (a new one every time: RETRAIN); its metrics as published beside its checkpoint."""
    assert run(tiny_settings(data_dir, artifacts, retrain=True, **overrides), StopFlag()) == 0
    metrics = json.loads((artifacts / "metrics.json").read_text())  # the latest finished run, made latest or not
    assert (artifacts / "models" / f"{metrics['model_version']}.pt").is_file()
    return metrics


def test_better_makes_a_run_latest_only_when_it_is_at_least_as_good_on_the_same_images(tiny_data_dir, tmp_path,
                                                                                      caplog):
    caplog.set_level(logging.INFO, logger="trainer")
    first = train(tiny_data_dir, tmp_path, **UNTRAINED)
    assert first["publication"]["latest"] and first["publication"]["reason"] == "the first model published here"
    assert first["publication"]["policy"] == "better" == TrainSettings().publish_if, "the default"

    good = train(tiny_data_dir, tmp_path, **TRAINED, seed=8)  # another SEED: the split is SPLIT_SEED's, the same
    assert good["validation_split"] == first["validation_split"]
    assert good["publication"]["latest"] and read_manifest(tmp_path).model_version == good["model_version"]
    assert good["publication"]["compared_with"] == {"model_version": first["model_version"],
                                                    "val_accuracy": first["val_accuracy"]}

    worse = train(tiny_data_dir, tmp_path, **UNTRAINED, seed=9)
    publication = worse["publication"]
    assert worse["val_accuracy"] < good["val_accuracy"] and publication["latest"] is False
    assert publication["reason"].startswith(f"validation accuracy {worse['val_accuracy']:.4f} < "
                                            f"{good['val_accuracy']:.4f} of the latest model {good['model_version']}")
    assert read_manifest(tmp_path).model_version == good["model_version"], "latest.json did not move"
    version = worse["model_version"]
    kept = {path.name for path in (tmp_path / "models").iterdir()}
    assert {f"{version}.pt", f"{version}.onnx", f"{version}.metrics.json"} <= kept, "published, only not latest"
    assert json.loads((tmp_path / "models" / f"{version}.metrics.json").read_text()) == worse
    assert f"kept on disk, NOT made latest: {version}" in caplog.text and publication["reason"] in caplog.text
    assert load_checkpoint(run_dir(tmp_path) / "last.pt").data["published_version"] == version

    assert promote_main([version, "--artifacts-dir", str(tmp_path)]) == 0  # by hand: the operator decides
    assert read_manifest(tmp_path).model_version == version
    promoted = json.loads((tmp_path / "models" / f"{version}.metrics.json").read_text())["publication"]
    assert promoted["latest"] is True and promoted["gate_reason"] == publication["reason"]
    assert good["model_version"] in promoted["reason"]
    assert promote_main(["20990101-000000-nothere", "--artifacts-dir", str(tmp_path)]) == 2
    assert promote_main(["../latest", "--artifacts-dir", str(tmp_path)]) == 2
    assert read_manifest(tmp_path).model_version == version


def test_always_makes_every_run_latest(tiny_data_dir, tmp_path):
    train(tiny_data_dir, tmp_path, **TRAINED)
    worse = train(tiny_data_dir, tmp_path, **UNTRAINED, publish_if="always")
    assert worse["publication"]["latest"] and worse["publication"]["policy"] == "always"
    assert read_manifest(tmp_path).model_version == worse["model_version"]


def test_a_run_validated_on_other_images_is_kept_out_because_it_cannot_be_judged(tiny_data_dir, tmp_path):
    first = train(tiny_data_dir, tmp_path, **UNTRAINED, split_seed=1)
    other = train(tiny_data_dir, tmp_path, **TRAINED)  # far better, but on another split: no fair comparison
    assert other["validation_split"]["sha256"] != first["validation_split"]["sha256"]
    reason = other["publication"]["reason"]
    assert other["publication"]["latest"] is False and "cannot be judged against the latest model" in reason
    assert "split seed 1, 100 images; this run: split seed 42, 100 images" in reason and "promote" in reason
    assert read_manifest(tmp_path).model_version == first["model_version"]


def test_checkpoints_from_before_recorded_splits_are_judged_by_their_recipe():
    split = {"seed": 42, "size": 5000, "sha256": "abc"}
    assert _split_mismatch({"hyperparameters": {"seed": 42, "val_size": 5000}}, split) is None  # SEED was the split's
    assert _split_mismatch({"hyperparameters": {"seed": 7, "split_seed": 42, "val_size": 5000}}, split) is None
    assert "split seed 7, 5000 images" in _split_mismatch({"hyperparameters": {"seed": 7, "val_size": 5000}}, split)
    assert _split_mismatch({"hyperparameters": {"note": "republished by hand"}}, split) is not None
    assert _split_mismatch({"validation_split": {"seed": 42, "size": 5000, "sha256": "abc"}}, split) is None
    assert _split_mismatch({"validation_split": {"seed": 42, "size": 5000, "sha256": "def"}}, split) is not None


def test_a_run_finished_before_split_seed_existed_is_not_trained_again(tiny_data_dir, tmp_path):
    """Its recipe has no split_seed: it used SEED for the split, so with SEED = SPLIT_SEED it is the same recipe."""
    settings = tiny_settings(tiny_data_dir, tmp_path, seed=42, epochs=1)
    assert run(settings, StopFlag()) == 0
    last = run_dir(tmp_path) / "last.pt"
    state = load_checkpoint(last).data
    state["recipe"] = {key: value for key, value in state["recipe"].items() if key != "split_seed"}
    save_checkpoint(last, state)
    version = read_manifest(tmp_path).model_version
    assert run(settings, StopFlag()) == 0
    assert read_manifest(tmp_path).model_version == version
    assert torch.load(last, weights_only=True)["recipe"].get("split_seed") is None, "not retrained"
