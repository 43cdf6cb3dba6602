"""Retention: the newest KEEP_MODELS published models stay, and so do the manifest's and every served one."""

import os
import time

import pytest

from shared.artifacts import prune_models, publish_model, read_manifest
from shared.serving import STALE_AFTER_S, ServingRecord, served_checkpoints


def _publish(artifacts, version: str, at: float) -> None:
    """A stand-in publication (checkpoint + metrics + manifest) with the given publication time."""
    models = artifacts / "models"
    models.mkdir(parents=True, exist_ok=True)
    for name in (f"{version}.pt", f"{version}.metrics.json"):
        (models / name).write_text(version)
        os.utime(models / name, (at, at))
    (artifacts / "latest.json").write_text(
        f'{{"model_version": "{version}", "checkpoint": "models/{version}.pt", '
        f'"metrics": "models/{version}.metrics.json"}}')


def _versions(artifacts) -> list[str]:
    return sorted(path.stem for path in (artifacts / "models").glob("*.pt"))


@pytest.fixture
def ten(tmp_path):
    """v00 ... v09 published an hour apart; the manifest names v09."""
    artifacts, now = tmp_path / "artifacts", time.time()
    for i in range(10):
        _publish(artifacts, f"v{i:02d}", now - (10 - i) * 3600)
    return artifacts


def test_the_newest_are_kept_with_their_metrics_and_the_rest_deleted_in_pairs(ten):
    assert prune_models(ten, keep=5) == ["v04", "v03", "v02", "v01", "v00"]
    assert _versions(ten) == ["v05", "v06", "v07", "v08", "v09"]
    assert sorted(path.name for path in (ten / "models").glob("*.metrics.json")) == \
        [f"v0{i}.metrics.json" for i in range(5, 10)]
    assert prune_models(ten, keep=5) == [], "running it again changes nothing"


def test_the_manifests_model_is_never_deleted_even_when_older_than_the_rest(ten):
    (ten / "latest.json").write_text('{"model_version": "v01", "checkpoint": "models/v01.pt", '
                                     '"metrics": "models/v01.metrics.json"}')  # rolled back by hand
    prune_models(ten, keep=2)
    assert _versions(ten) == ["v01", "v08", "v09"]
    assert read_manifest(ten).checkpoint_path.is_file()


def test_a_model_a_running_service_serves_is_never_deleted(ten, tmp_path):
    serving = tmp_path / "serving"
    ServingRecord(serving).write("artifacts", "models/v02.pt", "v02")  # a service that refused everything newer
    prune_models(ten, keep=3, serving_dir=serving)
    assert _versions(ten) == ["v02", "v07", "v08", "v09"]


def test_records_of_processes_that_are_gone_protect_nothing(ten, tmp_path):
    serving = tmp_path / "serving"
    record = ServingRecord(serving)
    record.write("artifacts", "models/v02.pt", "v02")
    long_ago = time.time() - STALE_AFTER_S - 60
    os.utime(record.path, (long_ago, long_ago))  # not touched by a poll for too long: that process is gone
    assert served_checkpoints(serving) == set()
    record.touch()
    assert served_checkpoints(serving) == {"models/v02.pt"}
    record.remove()
    assert served_checkpoints(serving) == set()
    ServingRecord(serving).write("default", "models/v02.pt", "v02")  # the shipped default: not in the artifacts
    prune_models(ten, keep=3, serving_dir=serving)
    assert _versions(ten) == ["v07", "v08", "v09"]


def test_an_interrupted_prune_is_finished_by_the_next_one(ten):
    (ten / "models" / "v00.pt").unlink()  # killed between the checkpoint and its metrics
    prune_models(ten, keep=9)
    assert not (ten / "models" / "v00.metrics.json").exists()
    assert _versions(ten) == [f"v{i:02d}" for i in range(1, 10)]


def test_every_file_of_a_deleted_model_goes_and_nothing_else(ten):
    (ten / "models" / "v00.onnx").write_text("another form of v00")
    (ten / "models" / "v09.onnx").write_text("another form of v09")
    (ten / "models" / ".v10.pt.x1y2.tmp").write_text("a publication being written")
    _publish(ten, "v1.5", time.time())  # a version with a dot in its name (not the trainer's, but possible)
    prune_models(ten, keep=6)
    assert sorted(path.name for path in (ten / "models").iterdir()) == [
        ".v10.pt.x1y2.tmp", "v05.metrics.json", "v05.pt", "v06.metrics.json", "v06.pt", "v07.metrics.json", "v07.pt",
        "v08.metrics.json", "v08.pt", "v09.metrics.json", "v09.onnx", "v09.pt", "v1.5.metrics.json", "v1.5.pt"]


def test_keep_zero_keeps_everything_and_a_real_publication_is_pruned_the_same_way(ten, tmp_path):
    assert prune_models(ten, keep=0) == [] and len(_versions(ten)) == 10
    assert prune_models(tmp_path / "never-published", keep=5) == []
    published = publish_model(ten, {"model_version": "v10", "weights": [1.0]}, {"test_accuracy": 0.5}, graph=False)
    prune_models(ten, keep=1)
    assert _versions(ten) == ["v10"] and published.metrics_path.is_file()
