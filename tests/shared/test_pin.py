"""The pin record (shared/pin.py): written atomically, read back, refused when damaged, and honoured by retention."""

import json

import pytest

from shared.artifacts import prune_models
from shared.pin import Pin, PinError, pin_file, pinned_checkpoint, read_pin, remove_pin, write_pin
from shared.serving import served_checkpoints
from tests.shared.test_retention import _versions, ten  # noqa: F401 (a fixture: v00 ... v09, the manifest names v09)


def pin(version: str, source: str = "artifacts") -> Pin:
    return Pin(model_version=version, source=source, checkpoint=f"models/{version}.pt", pinned_at="2026-12-01T00:00:00",
               pinned_by="replica/1", previous="v09")


def test_a_pin_is_written_read_back_and_removed(tmp_path):
    assert read_pin(tmp_path) is None and read_pin(None) is None and remove_pin(tmp_path) is False
    write_pin(tmp_path, pin("v02"))
    assert read_pin(tmp_path) == pin("v02") and pinned_checkpoint(tmp_path) == "models/v02.pt"
    assert served_checkpoints(tmp_path) == set(), "not one of the per-process serving records"
    assert remove_pin(tmp_path) is True and read_pin(tmp_path) is None
    write_pin(tmp_path, pin("v02", source="default"))
    assert pinned_checkpoint(tmp_path) is None, "the shipped model is not in the artifacts: nothing to protect"


@pytest.mark.parametrize("text", ["{ half", "[]", '"v02"', json.dumps({"model_version": "v02"}),
                                  json.dumps({**pin("v02").__dict__, "source": "elsewhere"}),
                                  json.dumps({**pin("../v02").__dict__}),
                                  json.dumps({**pin("v02").__dict__, "checkpoint": "../../etc/passwd"})])
def test_a_damaged_or_hand_made_record_is_refused_not_guessed(tmp_path, text):
    pin_file(tmp_path).parent.mkdir(parents=True)
    pin_file(tmp_path).write_text(text)
    with pytest.raises(PinError, match="SERVING_DIR/pin/pinned.json"):
        read_pin(tmp_path)
    assert pinned_checkpoint(tmp_path) is None


def test_retention_never_deletes_the_pinned_model_even_without_a_serving_record(ten, tmp_path):  # noqa: F811
    serving = tmp_path / "serving"
    write_pin(serving, pin("v01"))  # pinned, and (say) no process running to report serving it
    assert prune_models(ten, keep=2, serving_dir=serving) == ["v07", "v06", "v05", "v04", "v03", "v02", "v00"]
    assert _versions(ten) == ["v01", "v08", "v09"]
    assert (ten / "models" / "v01.metrics.json").is_file()
    remove_pin(serving)
    assert prune_models(ten, keep=2, serving_dir=serving) == ["v01"], "unpinned: an old model like the others"
