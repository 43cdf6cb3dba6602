"""Which published model each running inference process serves, where the trainer can read it.

The trainer keeps only the last few published models (``shared.artifacts.prune_models``) and must never delete one
that a running inference service still serves. The inference service mounts the artifacts read-only, so it
reports in a folder of its own, SERVING_DIR (in compose the `serving` volume, read-only in the trainer): one small
JSON file per process, written atomically when the model changes and touched at every manifest poll. A record not
touched for ``STALE_AFTER_S`` belongs to a process that is gone (killed, or its container removed) and protects
nothing any more; a process that stops cleanly removes its own.
"""

import contextlib
import json
import os
import socket
import time
from pathlib import Path

from shared.atomic import write_json_atomic

STALE_AFTER_S = 600.0  # far longer than any sensible RELOAD_INTERVAL_S (the touch interval)


class ServingRecord:
    """This process's record: ``<host>-<pid>.json`` holding the served checkpoint as the manifest names it."""

    def __init__(self, serving_dir: Path) -> None:
        self.path = Path(serving_dir) / f"{socket.gethostname()}-{os.getpid()}.json"

    def write(self, source: str, checkpoint: str, model_version: str) -> None:
        write_json_atomic(self.path, {"source": source, "checkpoint": checkpoint, "model_version": model_version,
                                      "pid": os.getpid(), "host": socket.gethostname()})

    def touch(self) -> None:
        """Still serving it: refresh the record's time (cheap: no rewrite)."""
        with contextlib.suppress(OSError):  # not written (yet), or unwritable: the write said so in the log
            os.utime(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def served_checkpoints(serving_dir: Path | None, now: float | None = None) -> set[str]:
    """The artifacts checkpoints (``models/<version>.pt``) that fresh records say are being served."""
    if serving_dir is None or not Path(serving_dir).is_dir():
        return set()
    now = time.time() if now is None else now
    served = set()
    for path in Path(serving_dir).glob("*.json"):
        try:
            if now - path.stat().st_mtime > STALE_AFTER_S:
                continue
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # removed meanwhile, or half a file from another writer: not a record
            continue
        if isinstance(record, dict) and record.get("source") == "artifacts" and record.get("checkpoint"):
            served.add(str(record["checkpoint"]))
    return served
