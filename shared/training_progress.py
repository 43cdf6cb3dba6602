"""Training progress, ``<artifacts>/training.json``: what the trainer is doing now, or how its last run ended.

The trainer (rank 0 alone under torchrun) rewrites the file atomically every PROGRESS_INTERVAL_S seconds from a
heartbeat thread, at the end of every epoch and at every change of state (``services/trainer/progress.py``); the
inference API serves it as ``GET /training`` and the page draws it. ``state`` is one of ``STATES``: ``running``,
then ``finished``, ``failed`` (with ``failure``) or ``interrupted`` (SIGTERM / Ctrl-C; starting again resumes the
same ``run_id``).

A SIGKILL, an out-of-memory kill or a lost machine cannot write a last state, so the file keeps saying
``running`` while its heartbeat ``updated_at`` stops moving. Readers therefore take a running file whose heartbeat
is older than ``STALE_AFTER_INTERVALS`` of the file's own ``interval_s`` as ``stale`` (``describe``): the writer's
interval decides, so a reader needs no setting of its own, and a test that sets a short interval sees it soon.

Standard library only: the CPU inference image has no torch.
"""

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROGRESS_NAME = "training.json"
SCHEMA_VERSION = 1
STATES = ("running", "finished", "failed", "interrupted")
STALE_AFTER_INTERVALS = 10  # heartbeats missed before a running file counts as stale
DEFAULT_INTERVAL_S = 2.0  # assumed for a file that does not say its interval


class ProgressUnreadable(Exception):
    """training.json exists but cannot be read as a JSON object (permissions, a folder, a hand-edited file)."""


def progress_path(artifacts_dir: str | Path) -> Path:
    return Path(artifacts_dir) / PROGRESS_NAME


def read_progress(artifacts_dir: str | Path) -> dict[str, Any] | None:
    """The progress record, or None when no run ever wrote one; ``ProgressUnreadable`` when it is not readable."""
    path = progress_path(artifacts_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise ProgressUnreadable(f"cannot read {path.name}: {error}") from error
    try:
        progress = json.loads(text)
    except ValueError as error:
        raise ProgressUnreadable(f"{path.name} is not valid JSON: {error}") from error
    if not isinstance(progress, dict):
        raise ProgressUnreadable(f"{path.name} holds a JSON {type(progress).__name__}, not an object")
    return progress


def heartbeat_age_s(progress: dict[str, Any], now: datetime) -> float | None:
    """Seconds since the writer last wrote the record (None when it has no readable ``updated_at``)."""
    try:
        updated = datetime.fromisoformat(str(progress["updated_at"]))
    except (KeyError, ValueError):
        return None
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    return max(0.0, (now - updated).total_seconds())


def stale_after_s(progress: dict[str, Any]) -> float:
    """How old the heartbeat of a running record may get: STALE_AFTER_INTERVALS of the writer's interval."""
    interval = progress.get("interval_s")
    valid = isinstance(interval, int | float) and not isinstance(interval, bool) and math.isfinite(interval) \
        and interval > 0
    return STALE_AFTER_INTERVALS * (float(interval) if valid else DEFAULT_INTERVAL_S)


def describe(progress: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The record as a reader should take it: ``state`` becomes ``stale`` for a running record whose heartbeat
    stopped and ``unknown`` for one naming no known state; ``heartbeat_age_s`` and ``stale_after_s`` are added."""
    now = datetime.now(UTC) if now is None else now
    age, limit = heartbeat_age_s(progress, now), stale_after_s(progress)
    state = progress.get("state")
    if state not in STATES:
        state = "unknown"
    elif state == "running" and (age is None or age > limit):
        state = "stale"
    return {**progress, "state": state, "heartbeat_age_s": None if age is None else round(age, 3),
            "stale_after_s": limit}
