"""The pinned model: one published version that every inference process serves instead of following latest.json.

The pin belongs to the serving side. The inference service mounts the artifacts read-only, so the pin lives in its
own folder, SERVING_DIR (in compose the `serving` volume, shared by every worker of every replica and read-only in
the trainer), as one small JSON record written atomically: ``SERVING_DIR/pin/pinned.json``. It sits in a
subfolder so that ``shared.serving``'s per-process records (``SERVING_DIR/*.json``) never meet it, and it never
goes stale: a pin holds until someone removes it (``DELETE /models/pin``).

Readers: every inference worker at each manifest poll (``ModelStore.poll``: a pin wins over latest.json), and the
trainer's retention (``shared.artifacts.prune_models`` never deletes the pinned checkpoint). Writer: the inference
process that answered ``POST /models/{version}/pin``, after it loaded that model successfully.
"""

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from shared.atomic import write_json_atomic

PIN_PATH = Path("pin") / "pinned.json"  # relative to SERVING_DIR
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # what a published model's file stem can be


class PinError(ValueError):
    """A pin record that cannot be read or does not say what to serve."""


@dataclass(frozen=True)
class Pin:
    """What to serve: a version, which folder it comes from and its checkpoint relative to that folder."""

    model_version: str
    source: Literal["artifacts", "default"]  # ARTIFACTS_DIR (published by the trainer) or DEFAULT_MODEL_DIR
    checkpoint: str  # models/<version>.pt
    pinned_at: str
    pinned_by: str  # the replica and worker that wrote it ("<replica>/<pid>")
    previous: str | None = None  # the version that process served when it was pinned: where a rollback came from


def pin_file(serving_dir: Path) -> Path:
    return Path(serving_dir) / PIN_PATH


def read_pin(serving_dir: Path | None) -> Pin | None:
    """The pin, or None when nothing is pinned (or there is no SERVING_DIR). A damaged record raises ``PinError``:
    the caller keeps what it serves rather than guess (the writes are atomic, so this takes a hand-edited file)."""
    if serving_dir is None:
        return None
    path = pin_file(serving_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise PinError(f"SERVING_DIR/{PIN_PATH.as_posix()}: unreadable: {error.strerror or error}") from error
    try:
        record = json.loads(text)
        pin = Pin(**{key: record[key] for key in Pin.__dataclass_fields__ if key in record})
    except (ValueError, TypeError) as error:
        raise PinError(f"SERVING_DIR/{PIN_PATH.as_posix()} is not a pin record: {error}") from error
    if pin.source not in ("artifacts", "default") or not isinstance(pin.model_version, str) or \
            not VERSION_PATTERN.fullmatch(pin.model_version) or pin.checkpoint != checkpoint_of(pin.model_version):
        raise PinError(f"SERVING_DIR/{PIN_PATH.as_posix()} names no model to serve: {record!r}"[:300])
    return pin


def checkpoint_of(version: str) -> str:
    """Where a published version's checkpoint is, relative to its folder (``shared.artifacts``' layout)."""
    return f"models/{version}.pt"


def write_pin(serving_dir: Path, pin: Pin) -> None:
    write_json_atomic(pin_file(serving_dir), asdict(pin))


def remove_pin(serving_dir: Path) -> bool:
    """Unpin; True when there was a pin to remove."""
    path = pin_file(serving_dir)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def pinned_checkpoint(serving_dir: Path | None) -> str | None:
    """The artifacts checkpoint (``models/<version>.pt``) the pin names, for retention; None without an artifacts
    pin. A damaged record protects nothing it cannot name."""
    try:
        pin = read_pin(serving_dir)
    except PinError:
        return None
    return pin.checkpoint if pin is not None and pin.source == "artifacts" else None
