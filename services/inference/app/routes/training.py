"""``GET /training``: the trainer's progress, ``ARTIFACTS_DIR/training.json`` (``shared.training_progress``).

Read on every request (a few kilobytes; the trainer replaces it atomically, so a read never meets half a file),
with ``state`` as readers should take it (``stale`` once the heartbeat stopped) and the version this process
serves, so a client sees in one answer when the run's model has arrived. No file: 404 ``no_training``; a file
that cannot be read or encoded: 503 ``training_progress_unreadable``; never a 500.
"""

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from services.inference.app.deps import ServingDep
from services.inference.app.errors import ApiError
from services.inference.app.schemas import error_responses
from shared.training_progress import ProgressUnreadable, describe, read_progress

router = APIRouter(tags=["training"])


class TrainingProgress(BaseModel):
    """What /training answers (documentation only: the file's own fields pass through as they are)."""

    model_config = ConfigDict(extra="allow")

    run_id: str = Field(description="the run; a resumed run keeps its id (see `resumed_from_epoch`)")
    state: str = Field(description="running, finished, failed, interrupted; stale: says running but nothing was "
                                   "written for `stale_after_s` (killed); unknown: not a state this API knows")
    phase: str | None = Field(description="while running: starting, training, validating, finishing (test, "
                                          "calibration, publishing)")
    settings: dict = Field(description="epochs, batch_size, lr, ..., device, precision, world_size, data sizes")
    epoch: int = Field(description="the epoch in progress (the last completed one before training starts)")
    epochs: int
    step: int = Field(description="steps done in this epoch, of `steps_per_epoch`")
    steps_per_epoch: int
    done_steps: int
    total_steps: int
    fraction: float = Field(description="done_steps / total_steps, 0 to 1")
    images_per_s: float | None = Field(description="training throughput of the current epoch, all processes")
    elapsed_s: float = Field(description="seconds since this trainer process started")
    eta_s: float | None = Field(description="estimated seconds of training left at the pace so far")
    history: list[dict] = Field(description="per completed epoch: train_loss, train_accuracy, val_loss, "
                                            "val_accuracy, lr, seconds, images")
    resumed_from_epoch: int | None = Field(description="set when this process resumed the run after that epoch")
    model_version: str | None = Field(description="finished: the model the run published")
    is_latest: bool | None = Field(description="finished: whether latest.json names that model")
    failure: dict | None = Field(description="failed: `type` and `message` of the exception")
    detail: str | None = Field(description="interrupted: how to resume")
    started_at: str
    updated_at: str = Field(description="the heartbeat: rewritten every `interval_s` seconds while running")
    finished_at: str | None
    interval_s: float
    heartbeat_age_s: float | None = Field(description="seconds since `updated_at`, by this server's clock")
    stale_after_s: float
    serving_version: str | None = Field(description="the model this API process serves now")


@router.get("/training", response_model=TrainingProgress, responses=error_responses(404, 503),
            summary="The training run going on, or how the last one ended")
def training(serving: ServingDep) -> Response:
    try:
        progress = read_progress(serving.settings.artifacts_dir)
    except ProgressUnreadable as error:
        raise ApiError(503, "training_progress_unreadable", str(error)) from error
    if progress is None:
        raise ApiError(404, "no_training", "no training run has reported progress here yet: ARTIFACTS_DIR has no "
                                           "training.json (the trainer writes it while it trains)")
    loaded = serving.store.current
    answer = {**describe(progress), "serving_version": None if loaded is None else loaded.version}
    try:
        body = orjson.dumps(answer)
    except orjson.JSONEncodeError as error:  # e.g. an integer beyond 64 bits in a hand-edited file
        raise ApiError(503, "training_progress_unreadable", f"training.json cannot be encoded: {error}") from error
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})
