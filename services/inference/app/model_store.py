"""Which model is served, and replacing it safely while requests are in flight.

Resolution: the model named by ``ARTIFACTS_DIR/latest.json`` (what the trainer publishes); until that exists,
the one named by ``DEFAULT_MODEL_DIR/latest.json`` (shipped with the repository). The default is only a
starting point: once a published model serves, a later broken publication never sends us back to it.
A pin (``shared.pin``, in SERVING_DIR) wins over both: while one is set, every poll serves the pinned version and
latest.json is not followed; a pinned model that cannot load is refused like any other and the current model keeps
serving (a process that serves nothing yet starts on latest.json instead, rather than answer 503).

Which code runs the network (BACKEND: ONNX Runtime or PyTorch) is chosen per model, as it loads (see
``backends``): the same model serves the same probabilities, temperature and versions on either. ONNX Runtime
needs only the graph and its card (``shared.graph_card``: version, temperature, probe), never the checkpoint or
torch, which the CPU image does not have; PyTorch loads the checkpoint.

Hot reload: ``poll()`` runs every RELOAD_INTERVAL_S (in a thread, from the app's lifespan). A new model is loaded,
checked with a test forward pass (the card's probe for a graph) and only then swapped in with one attribute
assignment. Each batch reads ``current`` once, so in-flight requests finish on the model they started with and
never fail. A corrupt or incompatible model is refused: logged, listed in ``rejected`` (shown in /metrics, with
when), and the old model keeps serving. A refused model is not retried until one of its files (checkpoint, graph,
card) changes (size or mtime), e.g. when the card an old model lacked is written. ``last_error`` is the latest
refusal while it is still the latest news: a good load clears it, the history stays in ``rejected``.

A graph that disagrees with its checkpoint (``GraphDisagrees``: exported from other weights, or with a preprocessing
that has changed since) is a broken release, not a detail: it is logged as an error, counted
(``reload.graph_disagreements``, the Prometheus ``inference_graph_disagreements_total``), and where torch serves the
checkpoint in its place, the model says so (``graph_disagreement``, shown by /ready and /metrics).

Nothing is loaded until a first model loads: ``require_current`` then raises ``NoModelLoaded``, which ``errors.py``
answers as 503 ``not_ready`` (the routes, the micro-batcher's thread and the samples' predictions alike).

What /metrics shows names files relative to their folder (``models/<version>.pt``) and the folders by their
setting (``redact``): never an absolute path of the server.
"""

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from services.inference.app.backends import Backend, OnnxBackend, TorchBackend, torch_installed
from services.inference.app.redact import redact
from shared.artifacts import PublishedModel, read_manifest
from shared.classes import NUM_CLASSES
from shared.graph_card import CardError, GraphDisagrees, card_path, check_agrees, graph_path, read_card
from shared.pin import Pin, PinError, checkpoint_of, read_pin
from shared.preprocess import IMAGE_SIDE

BackendChoice = Literal["auto", "onnx", "torch"]

log = logging.getLogger(__name__)
MAX_REJECTIONS_KEPT = 20
# What loading a model may raise for a bad file: CheckpointError and CardError are ValueErrors, torch adds its own
# RuntimeErrors (onnxruntime's are wrapped in CardError).
LOAD_ERRORS = (RuntimeError, ValueError, TypeError, KeyError, OSError)


class NoModelLoaded(LookupError):
    """Nothing serves yet: no model published in ARTIFACTS_DIR and none in DEFAULT_MODEL_DIR (or none loaded)."""

    def __init__(self) -> None:
        super().__init__("no model is loaded yet: nothing published in ARTIFACTS_DIR and no default model in "
                         "DEFAULT_MODEL_DIR; try again when /ready says ready")


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to serve, with what /metrics reports about it."""

    backend: Backend  # runs the network: ``backend.logits(uint8 pixels)``
    version: str
    device: str  # "cpu", "cuda", ...
    source: Literal["artifacts", "default"]
    checkpoint_path: Path
    checkpoint: str  # the file as the manifest names it, relative to its folder (``models/<version>.pt``)
    published_at: str
    loaded_at: str
    training_metrics: dict[str, Any]
    temperature: float = 1.0  # logits are divided by it before every softmax the API reports
    calibrated: bool = False  # False: the checkpoint predates calibration and serves the raw softmax (T = 1)
    graph_disagreement: str | None = None  # torch serves because the model's graph disagrees with it: why


@dataclass
class ReloadState:
    last_error: str | None = None  # the latest refusal, until a model loads after it
    rejected: list[dict[str, str]] = field(default_factory=list)  # every refusal (the last 20): checkpoint, error, at
    graph_disagreements: int = 0  # loads that found a graph disagreeing with its checkpoint (served by torch or not)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _file_key(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
        return str(path), stat.st_size, stat.st_mtime_ns
    except OSError:
        return str(path), -1, -1


def _model_key(checkpoint_path: Path) -> tuple[tuple[str, int, int], ...]:
    """A model's files as they are now: a refusal holds until one of them changes."""
    return tuple(_file_key(path) for path in (checkpoint_path, graph_path(checkpoint_path),
                                              card_path(checkpoint_path)))


class ModelStore:
    def __init__(self, artifacts_dir: Path, default_model_dir: Path, device: object,
                 backend: BackendChoice = "auto", threads: int = 1, serving_dir: Path | None = None) -> None:
        self.artifacts_dir, self.default_model_dir = artifacts_dir, default_model_dir
        self.device = str(device)  # "cpu", "cuda" (a torch.device is accepted too)
        self.backend, self.threads = backend, threads
        self.serving_dir = serving_dir  # where the pin is read (None: no pins)
        self.current: LoadedModel | None = None
        self._pin_problem: str | None = None  # the damaged pin record's error, logged once
        self.folders = {"ARTIFACTS_DIR": artifacts_dir, "DEFAULT_MODEL_DIR": default_model_dir}  # for ``redact``
        self.reload = ReloadState()
        self._refused: set[tuple[tuple[str, int, int], ...]] = set()
        self._lock = threading.Lock()  # one poll at a time (startup and the poller may overlap)
        # Observers (the Prometheus metrics, the serving record): called with the new model, or the refused file.
        self.on_loaded: list[Callable[[LoadedModel], None]] = []
        self.on_refused: list[Callable[[str], None]] = []
        self.on_graph_disagrees: list[Callable[[str], None]] = []  # called with the checkpoint's name

    def require_current(self) -> LoadedModel:
        """The serving model; ``NoModelLoaded`` while there is none."""
        loaded = self.current
        if loaded is None:
            raise NoModelLoaded()
        return loaded

    def poll(self) -> bool:
        """Load the pinned model, else the newest good one, if it changed; True when a new model now serves."""
        with self._lock:
            try:
                pin = read_pin(self.serving_dir)
                self._pin_problem = None
            except PinError as error:  # keep what serves rather than guess what a damaged record meant
                self._report_pin_problem(str(error))
                if self.current is not None:
                    return False
                pin = None
            if pin is not None:
                target, source = self.pinned_model(pin)
                if self._is_new(target) and self._try_load(target, source):
                    return True
                if self.current is not None:
                    return False
            published = read_manifest(self.artifacts_dir)
            if published is not None and self._is_new(published) and self._try_load(published, "artifacts"):
                return True
            if self.current is None:
                default = read_manifest(self.default_model_dir)
                if default is not None and self._is_new(default):
                    return self._try_load(default, "default")
            return False

    def pinned_model(self, pin: Pin) -> tuple[PublishedModel, Literal["artifacts", "default"]]:
        """Where the pinned version is: its checkpoint and metrics in the folder the pin names."""
        folder = self.artifacts_dir if pin.source == "artifacts" else self.default_model_dir
        manifest = read_manifest(folder)
        published_at = manifest.published_at if manifest and manifest.model_version == pin.model_version else ""
        return PublishedModel(pin.model_version, folder / checkpoint_of(pin.model_version),
                              folder / "models" / f"{pin.model_version}.metrics.json",
                              published_at or pin.pinned_at), pin.source

    def serve_now(self, published: PublishedModel, source: Literal["artifacts", "default"],
                  commit: Callable[[LoadedModel], None]) -> LoadedModel:
        """Load ``published`` and serve it at once (a pin): ``commit`` (writing the pin record) runs after the model
        loaded and before it serves, under the poll lock, so no poll sees the record without the model. Raises what
        loading raises (``CheckpointError``, ...): then nothing is committed and the current model keeps serving."""
        with self._lock:
            current = self.current
            if current is not None and current.checkpoint_path == published.checkpoint_path:
                commit(current)  # already serving it: pinning only stops following latest.json
                return current
            loaded = self._load(published, source)
            commit(loaded)
            self._serve(loaded)
            return loaded

    def _report_pin_problem(self, message: str) -> None:
        if message != self._pin_problem:
            log.error("ignoring the pin: %s", message)
            self.reload.last_error = message
        self._pin_problem = message

    def _is_new(self, published: PublishedModel) -> bool:
        current = self.current
        if current is not None and current.checkpoint_path == published.checkpoint_path:
            return False
        return _model_key(published.checkpoint_path) not in self._refused

    def _try_load(self, published: PublishedModel, source: Literal["artifacts", "default"]) -> bool:
        try:
            loaded = self._load(published, source)
        except LOAD_ERRORS as error:
            self._refuse(published, source, error)
            return False
        self._serve(loaded)
        return True

    def _serve(self, loaded: LoadedModel) -> None:
        previous, self.current = self.current, loaded
        self.reload.last_error = None
        log.info("serving model %s from %s (was %s)", loaded.version, loaded.checkpoint_path,
                 previous.version if previous else "none")
        for callback in self.on_loaded:
            callback(loaded)

    def _load(self, published: PublishedModel, source: Literal["artifacts", "default"]) -> LoadedModel:
        """ONNX Runtime when BACKEND allows it and the graph and its card are there and agree; else torch."""
        if self.backend == "onnx" or (self.backend == "auto" and self.device == "cpu"):
            try:
                return self._load_graph(published, source)
            except CardError as error:
                if isinstance(error, GraphDisagrees):
                    self._report_disagreement(published, source, error)
                if self.backend == "onnx":
                    raise
                if not torch_installed():
                    raise CardError(f"{error}; this image has no torch to serve the checkpoint itself") from error
                if isinstance(error, GraphDisagrees):
                    return replace(self._load_checkpoint(published, source),
                                   graph_disagreement=f"{error}; serving torch")
                log.warning("%s: %s; serving the checkpoint with torch", published.checkpoint_path, error)
        return self._load_checkpoint(published, source)

    def _report_disagreement(self, published: PublishedModel, source: Literal["artifacts", "default"],
                             error: GraphDisagrees) -> None:
        name = self._name(published, source)
        log.error("model %s: %s; its graph and card must be exported again from the checkpoint (`python -m "
                  "services.trainer.cards` after deleting its card)", name, error)
        self.reload.graph_disagreements += 1
        for callback in self.on_graph_disagrees:
            callback(name)

    def _load_graph(self, published: PublishedModel, source: Literal["artifacts", "default"]) -> LoadedModel:
        """The graph and its card only: no checkpoint, no torch."""
        graph = graph_path(published.checkpoint_path)
        if not graph.is_file():
            raise CardError(f"no ONNX graph {graph.name} beside the checkpoint")
        card = read_card(card_path(published.checkpoint_path))
        if card.model_version != published.model_version:
            raise CardError(f"the graph card is for {card.model_version}, the manifest names {published.model_version}")
        try:
            backend = OnnxBackend(graph, self.threads)
            check_agrees(backend.logits, card)
        except CardError:
            raise
        except Exception as error:  # onnxruntime raises its own types for unreadable graphs
            raise CardError(f"unusable ONNX graph {graph.name}: {error}") from error
        return LoadedModel(
            backend=backend, version=card.model_version, device="cpu", source=source,
            checkpoint_path=published.checkpoint_path, checkpoint=self._name(published, source),
            published_at=published.published_at, loaded_at=_now(),
            training_metrics=_read_metrics(published.metrics_path, {}),
            temperature=card.temperature if card.calibrated else 1.0, calibrated=card.calibrated,
        )

    def _load_checkpoint(self, published: PublishedModel, source: Literal["artifacts", "default"]) -> LoadedModel:
        from shared.checkpoint import CheckpointError, load_checkpoint  # torch: only this path needs it

        checkpoint = load_checkpoint(published.checkpoint_path)
        backend = TorchBackend(checkpoint.build_model(self.device), self.device)
        logits = backend.logits(np.zeros((1, IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8))
        if tuple(logits.shape) != (1, NUM_CLASSES):
            raise CheckpointError(f"{published.checkpoint_path}: model outputs {tuple(logits.shape)}")
        return LoadedModel(
            backend=backend, version=checkpoint.model_version, device=self.device, source=source,
            checkpoint_path=published.checkpoint_path, checkpoint=self._name(published, source),
            published_at=published.published_at, loaded_at=_now(),
            training_metrics=_read_metrics(published.metrics_path, checkpoint.data.get("metrics", {})),
            temperature=checkpoint.temperature, calibrated=checkpoint.calibrated,
        )

    def _name(self, published: PublishedModel, source: Literal["artifacts", "default"]) -> str:
        """The checkpoint relative to its folder, as the manifest names it."""
        folder = self.artifacts_dir if source == "artifacts" else self.default_model_dir
        try:
            return published.checkpoint_path.relative_to(folder).as_posix()
        except ValueError:  # a manifest naming a file elsewhere
            return redact(str(published.checkpoint_path), self.folders)

    def _refuse(self, published: PublishedModel, source: Literal["artifacts", "default"], error: Exception) -> None:
        path, name = published.checkpoint_path, self._name(published, source)
        log.error("refusing model %s; %s", path, error)
        self._refused.add(_model_key(path))
        message = redact(str(error), self.folders)
        self.reload.last_error = message
        self.reload.rejected = [*self.reload.rejected, {"path": name, "source": source, "error": message,
                                                        "at": _now()}][-MAX_REJECTIONS_KEPT:]
        for callback in self.on_refused:
            callback(name)


def _read_metrics(path: Path, fallback: dict[str, Any]) -> dict[str, Any]:
    """The model's metrics.json verbatim; the summary inside the checkpoint when that file is unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        log.warning("metrics %s unreadable (%s); using the checkpoint's summary", path, error)
        return dict(fallback)
