"""The micro-batcher with the shipped model on ONNX Runtime: a lone small request runs on the event loop (no
thread hand-off), while requests in flight together go to the worker thread and share forward passes."""

import asyncio
import threading
from pathlib import Path

import numpy as np
import torch

from services.inference.app.batching import MicroBatcher
from services.inference.app.model_store import ModelStore
from tests.processes import REPO_ROOT


def _batcher(tmp_path: Path, ran_on: list[tuple[str, int]]) -> MicroBatcher:
    store = ModelStore(tmp_path / "no-artifacts", REPO_ROOT / "models" / "default", torch.device("cpu"), "onnx")
    assert store.poll() and store.current.backend.name == "onnx"
    return MicroBatcher(store, enabled=True, max_batch_size=16, max_wait_ms=2.0,
                        on_batch=lambda images, _seconds: ran_on.append((threading.current_thread().name, images)))


async def _request(batcher: MicroBatcher, pixels: np.ndarray, started: asyncio.Event | None = None) -> np.ndarray:
    with batcher.handling():
        if started is not None:
            await started.wait()  # every request is inside the route before any asks for a prediction
        probabilities, _loaded = await batcher.predict(pixels)
        return probabilities


def test_a_lone_request_runs_inline_and_concurrent_ones_batch_on_the_worker(tmp_path):
    ran_on: list[tuple[str, int]] = []
    batcher = _batcher(tmp_path, ran_on)
    pixels = np.random.default_rng(0).integers(0, 256, (8, 1, 28, 28), dtype=np.uint8)
    try:
        alone = asyncio.run(_request(batcher, pixels[0]))
        assert ran_on == [(threading.main_thread().name, 1)]

        async def together() -> list[np.ndarray]:
            started = asyncio.Event()
            tasks = [asyncio.create_task(_request(batcher, image, started)) for image in pixels]
            await asyncio.sleep(0)
            started.set()
            return await asyncio.gather(*tasks)

        ran_on.clear()
        results = asyncio.run(together())
    finally:
        batcher.close()
    assert {thread for thread, _images in ran_on} == {"model-worker"}
    assert sum(images for _thread, images in ran_on) == 8 and len(ran_on) < 8  # some shared a forward pass
    np.testing.assert_allclose(results[0], alone, atol=1e-6)  # the same answer either way
