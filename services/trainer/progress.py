"""The trainer's side of ``training.json`` (the format and its readers: ``shared.training_progress``).

``TrainingProgress`` counts the loop's steps (a few additions per step: the loop itself never writes) and a
heartbeat thread writes a snapshot every PROGRESS_INTERVAL_S seconds, so the file keeps moving through validation,
the final test and publishing too, when no step runs. Epoch ends and changes of state are written at once. Used as
a context manager around a run it records how the run ended: ``finished``; ``interrupted`` for the exceptions
named as ``interruptions`` (the trainer's stop signal); ``failed`` with the message for any other exception, which
goes on unchanged, so the exit code is the one the run would have had anyway. A disabled one (every rank but 0
under torchrun) writes nothing. A write that fails (a full disk) is logged once and never stops training.

Time left: the steps still to do at this process's pace so far (wall time per step, validation included, data
loading not), so it settles after the first epoch. images/s: the current epoch's training throughput, all ranks
together.
"""

import logging
import os
import secrets
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from services.trainer.config import TrainSettings
from services.trainer.distributed import World
from shared.artifacts import read_manifest, run_dir
from shared.atomic import write_json_atomic
from shared.checkpoint import CheckpointError, load_checkpoint
from shared.training_progress import SCHEMA_VERSION, progress_path

log = logging.getLogger("trainer")

MAX_MESSAGE_CHARS = 2000


def new_run_id() -> str:
    """Sortable by start time, unique: ``20261201-093000-1a2b3c4d``."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class TrainingProgress:
    """One run's progress record, kept up to date in ``path`` (see the module docstring)."""

    def __init__(self, path: Path, run_id: str, settings: dict[str, Any], interval_s: float, *,
                 history: list[dict] | None = None, resumed_from_epoch: int | None = None, enabled: bool = True,
                 world_size: int = 1, interruptions: tuple[type[BaseException], ...] = (KeyboardInterrupt,)) -> None:
        self.path, self.run_id, self.interval_s, self.enabled = Path(path), run_id, interval_s, enabled
        self.world_size, self.interruptions = world_size, interruptions
        self.record: dict[str, Any] = {
            "schema": SCHEMA_VERSION, "run_id": run_id, "state": "running", "phase": "starting", "settings": settings,
            "resumed_from_epoch": resumed_from_epoch, "started_at": utc_now(), "finished_at": None,
            "model_version": None, "is_latest": None, "failure": None, "detail": None,
            "interval_s": interval_s, "pid": os.getpid(), "host": socket.gethostname(),
        }
        self.history = list(history or [])
        self.epoch = len(self.history)
        self.epochs = self.steps_per_epoch = self.step = self.done_steps = self.total_steps = 0
        self._attempt_steps, self._loop_started = 0, None
        self._epoch_images, self._epoch_started, self._images_per_s = 0, time.monotonic(), None
        self._started, self._closed, self._write_failed = time.monotonic(), False, False
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._heartbeat: threading.Thread | None = None

    def __enter__(self) -> "TrainingProgress":
        self.write()
        if self.enabled:
            self._heartbeat = threading.Thread(target=self._beat, name="training-progress", daemon=True)
            self._heartbeat.start()
        return self

    def __exit__(self, kind, error, _traceback) -> bool:
        if error is None:
            if not self._closed:
                self.close("finished")
        elif isinstance(error, self.interruptions):
            self.close("interrupted", detail="stopped by a signal (SIGTERM or Ctrl-C) during epoch "
                                             f"{self.epoch}; run the trainer again with the same settings to "
                                             f"resume after epoch {len(self.history)}")
        else:
            self.close("failed", failure={"type": kind.__name__, "message": str(error)[:MAX_MESSAGE_CHARS]})
        return False  # the exception, if any, goes on

    # The loop's calls, in order.
    def begin(self, epochs: int, steps_per_epoch: int, data: dict[str, int]) -> None:
        """Data loaded, the loop starts (after ``len(history)`` completed epochs when resuming)."""
        self.epochs, self.steps_per_epoch, self.total_steps = epochs, steps_per_epoch, epochs * steps_per_epoch
        self.done_steps = len(self.history) * steps_per_epoch
        self.record["settings"] = {**self.record["settings"], "data": data}
        self._loop_started = time.monotonic()
        self._set_phase("training")

    def begin_epoch(self, epoch: int) -> None:
        self.epoch, self.step, self._epoch_images, self._epoch_started = epoch, 0, 0, time.monotonic()
        self.record["phase"] = "training"

    def step_done(self, images: int) -> None:
        """One optimizer step of ``images`` on this rank (the hot path: counting only)."""
        self.step += 1
        self.done_steps += 1
        self._attempt_steps += 1
        self._epoch_images += images * self.world_size

    def validating(self) -> None:
        self._images_per_s = self._epoch_rate()
        self.record["phase"] = "validating"

    def end_epoch(self, history: list[dict]) -> None:
        self.history = list(history)
        self.write()

    def finishing(self) -> None:
        """Every epoch done: the best one is calibrated, tested and published."""
        self._set_phase("finishing")

    def finished(self, model_version: str | None, is_latest: bool | None) -> None:
        self.close("finished", model_version=model_version, is_latest=is_latest)

    def close(self, state: str, **fields: Any) -> None:
        """The last write: stop the heartbeat, then record the final state."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        self.record.update(state=state, phase=None, finished_at=utc_now(), **fields)
        self._closed = True
        self.write()

    def write(self) -> None:
        if not self.enabled:
            return
        with self._lock:  # one writer at a time, so an older snapshot never lands after a newer one
            try:
                write_json_atomic(self.path, self.snapshot())
            except (OSError, TypeError, ValueError) as error:  # a full disk, a value JSON cannot hold
                if not self._write_failed:
                    log.warning("cannot write training progress to %s (training goes on): %s", self.path, error)
                self._write_failed = True

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        training = self.record["state"] == "running" and self.record["phase"] in ("training", "validating")
        return {
            **self.record,
            "epoch": self.epoch, "epochs": self.epochs, "step": self.step, "steps_per_epoch": self.steps_per_epoch,
            "done_steps": self.done_steps, "total_steps": self.total_steps,
            "fraction": round(self.done_steps / self.total_steps, 6) if self.total_steps else 0.0,
            "images_per_s": self._epoch_rate() if self.record["phase"] == "training" else self._images_per_s,
            "elapsed_s": round(now - self._started, 3),
            "eta_s": self._eta(now) if training else (0.0 if self.record["phase"] == "finishing" else None),
            "history": self.history,
            # the final record was last updated when the run ended: one instant, not two clock readings
            "updated_at": self.record["finished_at"] if self._closed else utc_now(),
        }

    def _set_phase(self, phase: str) -> None:
        self.record["phase"] = phase
        self.write()

    def _epoch_rate(self) -> float | None:
        seconds = time.monotonic() - self._epoch_started
        if not self._epoch_images or seconds <= 0:
            return self._images_per_s
        self._images_per_s = round(self._epoch_images / seconds, 1)
        return self._images_per_s

    def _eta(self, now: float) -> float | None:
        if self._loop_started is None or not self._attempt_steps:
            return None
        per_step = (now - self._loop_started) / self._attempt_steps
        return round(max(0, self.total_steps - self.done_steps) * per_step, 1)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.write()


def open_progress(settings: TrainSettings, device: torch.device, world: World, state: dict | None,
                  interruptions: tuple[type[BaseException], ...]) -> TrainingProgress:
    """This run's record: a new run id, or, when resuming, the run's own (kept in run/last.pt) and its history."""
    state = state or {}
    recorded = {**settings.recipe(), "device": str(device),
                "precision": "bf16 autocast" if settings.uses_bf16(device) else "fp32",
                "world_size": world.size, "per_rank_batch_size": settings.batch_size // world.size,
                "distributed_backend": world.backend}
    return TrainingProgress(progress_path(settings.artifacts_dir), state.get("run_id") or new_run_id(), recorded,
                            settings.progress_interval_s, history=state.get("history"),
                            resumed_from_epoch=state.get("epoch"), enabled=world.is_main, world_size=world.size,
                            interruptions=interruptions)


def published_by_run(artifacts_dir: Path) -> tuple[str | None, bool | None]:
    """The version the finished run published (``run/last.pt`` says) and whether ``latest.json`` names it."""
    try:
        version = load_checkpoint(run_dir(artifacts_dir) / "last.pt").data.get("published_version")
    except CheckpointError:
        return None, None
    if version is None:
        return None, None
    manifest = read_manifest(artifacts_dir)
    return version, manifest is not None and manifest.model_version == version
