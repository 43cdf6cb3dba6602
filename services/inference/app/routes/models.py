"""Model versions: list them, read one, pin one (roll back) and unpin.

Reading is open: ``GET /models`` lists every model on disk with its figures and where it stands (latest, served by
the process that answers, pinned, kept out by the trainer's publish gate and why); ``GET /models/{version}`` is one
model's metrics in the shape of /metrics. Pinning is management (``AdminDep``: ADMIN_TOKEN): ``POST
/models/{version}/pin`` loads the version in this process first (a version that is not on disk or does not load is
refused, and the current model keeps serving), then writes the pin in SERVING_DIR and serves it; every other worker
of every replica follows at its next poll (RELOAD_INTERVAL_S). ``DELETE /models/pin`` returns to latest.json.
Without SERVING_DIR there is nowhere all processes can see a pin, so pinning is refused (409).
"""

import asyncio
import logging
import os
from datetime import UTC, datetime

from fastapi import APIRouter

from services.inference.app.auth import AdminDep
from services.inference.app.catalog import Catalog, ModelOnDisk, summary
from services.inference.app.deps import ServingDep
from services.inference.app.errors import ApiError
from services.inference.app.model_store import LOAD_ERRORS, LoadedModel
from services.inference.app.redact import redact
from services.inference.app.replica import MODEL_VERSION_HEADER
from services.inference.app.responses import OrjsonResponse
from services.inference.app.schemas import error_responses
from services.inference.app.serving_state import ServingState
from shared.pin import Pin, PinError, read_pin, remove_pin, write_pin

router = APIRouter(prefix="/models", tags=["models"])
log = logging.getLogger(__name__)


class PinNotSaved(Exception):
    """The model loaded, but SERVING_DIR would not take the record (read-only, full): nothing was pinned."""


@router.get("", summary="Every model on disk: figures, latest, served here, pinned, kept out and why")
async def list_models(serving: ServingDep) -> OrjsonResponse:
    return OrjsonResponse(await asyncio.to_thread(_listing, serving))


@router.get("/pin", summary="The pin: the version every process serves instead of following latest.json")
async def show_pin(serving: ServingDep) -> OrjsonResponse:
    pin, problem = _read_pin(serving)
    return OrjsonResponse({"pinned": pin.model_version if pin else None, "pin": _as_dict(pin), "pin_error": problem})


@router.get("/{version}", responses=error_responses(404),
            summary="One model's metrics, in the shape of /metrics, and where it stands")
async def one_model(serving: ServingDep, version: str) -> OrjsonResponse:
    model = _find(serving, version)
    return OrjsonResponse(await asyncio.to_thread(_details, serving, model))


@router.post("/{version}/pin", dependencies=[AdminDep], responses=error_responses(403, 404, 409, 422, 503),
             summary="Serve this version everywhere, whatever latest.json says (roll back or hold)")
async def pin_version(serving: ServingDep, version: str) -> OrjsonResponse:
    serving_dir = _serving_dir(serving)
    model = _find(serving, version)
    store, before = serving.store, serving.store.current

    def commit(_loaded: LoadedModel) -> None:
        pin = Pin(model_version=model.version, source=model.source, checkpoint=model.checkpoint,
                  pinned_at=datetime.now(UTC).isoformat(timespec="seconds"),
                  pinned_by=f"{serving.settings.replica_name}/{os.getpid()}",
                  previous=before.version if before else None)
        try:
            write_pin(serving_dir, pin)
        except OSError as error:
            raise PinNotSaved(f"could not write the pin in SERVING_DIR: {error.strerror or error}; "
                              "nothing changed") from error

    try:
        loaded = await asyncio.to_thread(store.serve_now, model.published(), model.source, commit)
    except PinNotSaved as error:
        raise ApiError(503, "pin_not_saved", str(error)) from error
    except LOAD_ERRORS as error:
        message = redact(str(error), store.folders).splitlines()[0][:300]  # torch's errors run to many lines
        log.warning("refused to pin %s: %s", model.version, error)
        current = store.current
        raise ApiError(422, "model_unloadable", f"model {model.version} cannot be served, so it is not pinned: "
                       f"{message}; still serving {current.version if current else 'nothing'}") from error
    log.info("pinned model %s (was serving %s)", loaded.version, before.version if before else "nothing")
    pin, _ = _read_pin(serving)
    return OrjsonResponse({"pinned": model.version, "pin": _as_dict(pin), "served": loaded.version,
                           "detail": f"this worker serves {loaded.version} now; every worker of every replica "
                                     f"follows within RELOAD_INTERVAL_S ({serving.settings.reload_interval_s:g} s)"},
                          headers={MODEL_VERSION_HEADER: loaded.version})


@router.delete("/pin", dependencies=[AdminDep], responses=error_responses(403, 409),
               summary="Unpin: follow latest.json again")
async def unpin(serving: ServingDep) -> OrjsonResponse:
    serving_dir = _serving_dir(serving)
    was, _ = _read_pin(serving)
    removed = remove_pin(serving_dir)
    await asyncio.to_thread(serving.store.poll)  # this worker follows latest.json at once, the others at their poll
    current = serving.store.current
    served = current.version if current else None
    latest = Catalog(serving.settings.artifacts_dir, serving.settings.default_model_dir).latest()
    log.info("unpinned %s; following latest.json (%s)", was.model_version if was else "(a damaged pin)", latest)
    return OrjsonResponse({"pinned": None, "was": was.model_version if was else None, "served": served,
                           "latest": latest,
                           "detail": ("every worker of every replica follows latest.json again within "
                                      f"RELOAD_INTERVAL_S ({serving.settings.reload_interval_s:g} s)")
                           if removed else "nothing was pinned"},
                          headers={MODEL_VERSION_HEADER: served} if served else None)


def _serving_dir(serving: ServingState):
    serving_dir = serving.settings.serving_dir
    if serving_dir is None:
        raise ApiError(409, "pinning_unavailable", "this server sets no SERVING_DIR: a pin is kept there, where every "
                                                   "worker and replica reads it, so nothing can be pinned")
    return serving_dir


def _find(serving: ServingState, version: str) -> ModelOnDisk:
    model = Catalog(serving.settings.artifacts_dir, serving.settings.default_model_dir).find(version)
    if model is None:
        raise ApiError(404, "model_not_found", f"no model {version[:80]!r} on disk (in ARTIFACTS_DIR/models or "
                                               "DEFAULT_MODEL_DIR/models); GET /models lists them")
    return model


def _read_pin(serving: ServingState) -> tuple[Pin | None, str | None]:
    try:
        return read_pin(serving.settings.serving_dir), None
    except PinError as error:
        return None, str(error)


def _as_dict(pin: Pin | None) -> dict | None:
    return None if pin is None else {key: getattr(pin, key) for key in Pin.__dataclass_fields__}


def _listing(serving: ServingState) -> dict:
    catalog = Catalog(serving.settings.artifacts_dir, serving.settings.default_model_dir)
    latest, served, pin, problem = _where_things_stand(serving, catalog)
    pinned = pin.model_version if pin else None
    return {
        "latest": latest, "served": served, "pinned": pinned, "following": "pin" if pin else "latest",
        "pin": _as_dict(pin), "pin_error": problem,
        "models": [summary(model, model.metrics(), latest=model.version == latest, served=model.version == served,
                           pinned=model.version == pinned) for model in catalog.models()],
    }


def _details(serving: ServingState, model: ModelOnDisk) -> dict:
    """What /metrics says about the served model, for any model on disk (device, backend and loaded_at only for the
    one this process serves)."""
    catalog = Catalog(serving.settings.artifacts_dir, serving.settings.default_model_dir)
    latest, served, pin, _ = _where_things_stand(serving, catalog)
    metrics, current = model.metrics(), serving.store.current
    loaded = current if current is not None and current.version == model.version else None
    temperature = (metrics.get("calibration") or {}).get("temperature")
    return {
        "model": {
            **summary(model, metrics, latest=model.version == latest, served=model.version == served,
                      pinned=pin is not None and pin.model_version == model.version),
            "device": str(loaded.device) if loaded else None, "backend": loaded.backend.name if loaded else None,
            "loaded_at": loaded.loaded_at if loaded else None,
            "calibrated": loaded.calibrated if loaded else temperature is not None,
            "temperature": loaded.temperature if loaded else (temperature if temperature is not None else 1.0),
            "graph_disagreement": loaded.graph_disagreement if loaded else None,
        },
        "training": metrics,
    }


def _where_things_stand(serving: ServingState,
                        catalog: Catalog) -> tuple[str | None, str | None, Pin | None, str | None]:
    """latest.json's version, the one this process serves, the pin and a damaged pin's error."""
    current = serving.store.current
    pin, problem = _read_pin(serving)
    return catalog.latest(), current.version if current else None, pin, problem
