"""What the routes need, built once per app in the lifespan and kept on ``app.state.serving`` (the routes get
it through ``deps.ServingDep``)."""

from dataclasses import dataclass

from services.inference.app.batching import MicroBatcher
from services.inference.app.config import Settings
from services.inference.app.metrics_prom import Metrics
from services.inference.app.model_store import ModelStore
from services.inference.app.saliency import Explainer
from services.inference.app.sample_store import SampleStore


@dataclass(frozen=True)
class ServingState:
    settings: Settings
    store: ModelStore
    batcher: MicroBatcher
    explainer: Explainer
    samples: SampleStore
    metrics: Metrics
