"""Micro-batching: concurrent requests share one forward pass instead of queueing for one pass each.

All model work runs in ONE worker thread, off the event loop, so the loop keeps parsing requests while the
model computes. Requests hand ``_Job``s to the worker through a thread-safe queue; the worker forms batches
itself, so it never sits idle waiting for the busy event loop to schedule the next batch:

* A lone request never waits for company: an idle worker is blocked on the queue and runs a job at once.
* While the worker computes, new jobs queue up; the next batch takes everything queued, up to MAX_BATCH_SIZE
  images (a job that would overflow it starts the following batch; a single request with more images than
  that runs alone, in passes of MAX_BATCH_SIZE).
* MAX_BATCH_WAIT_MS only applies when requests are known to be on their way (their body fully received and
  still being parsed: see ``arriving``); then a batch waits at most that long for them, never for strangers, and
  never for a client that is still sending (or has stalled in the middle of) its upload.

One exception: a small request that is the only one in its process (``handling`` counts the /predict requests
in flight, after one turn of the loop so that requests already sent are read) runs on the event loop when the
backend is ONNX Runtime: the two thread wake-ups of the hand-off were a good part of a lone request's time
(concurrency 1, p50: 1.50-1.53 ms inline against 1.56-1.73 ms through the worker, side by side in two runs).

Results go back to the event loop with one ``call_soon_threadsafe`` per batch. With BATCHING=false the same
worker runs every job as its own batch: the baseline the benchmark compares against. (Running the model on the
event loop itself instead, with no thread at all, was measured too: with two workers on two cores it served a
third of the requests/s at concurrency 16, since the loop then stops parsing while the model computes.)
"""

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from services.inference.app.backends import set_torch_threads
from services.inference.app.classify import predict_probabilities
from services.inference.app.model_store import LoadedModel, ModelStore

BatchResult = tuple[np.ndarray, LoadedModel]  # probabilities (N, 10) and the model that produced them


INLINE_MAX_IMAGES = 4  # a lone request this small runs on the event loop (ONNX Runtime: well under 1 ms)


@dataclass
class _Job:
    pixels: np.ndarray  # uint8 (n, 28, 28)
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class MicroBatcher:
    def __init__(self, store: ModelStore, *, enabled: bool, max_batch_size: int, max_wait_ms: float,
                 threads: int = 0, on_batch: Callable[[int, float], None] | None = None) -> None:
        self.store, self.enabled, self.max_batch_size = store, enabled, max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.on_batch = on_batch  # (images, seconds) per forward pass, for the metrics
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._arriving = 0  # written by the event loop only; the worker just reads it
        self._pending = 0  # jobs handed to the worker and not yet delivered (event loop only)
        self._handling = 0  # /predict requests inside the route, body still arriving or not (event loop only)
        self._worker = threading.Thread(target=self._work, args=(threads,), name="model-worker", daemon=True)
        self._worker.start()

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        """Wrap a /predict request from its start: the batcher runs a lone request's forward pass inline."""
        self._handling += 1
        try:
            yield
        finally:
            self._handling -= 1

    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        """Wrap a request's parsing, once its body is complete: a batch may briefly wait for requests inside this
        block, so it must never hold one whose input still depends on the network."""
        self._arriving += 1
        try:
            yield
        finally:
            self._arriving -= 1

    async def predict(self, pixels: np.ndarray) -> BatchResult:
        """Probabilities for uint8 pixels (n, 28, 28), and the model that computed them."""
        if await self._alone(pixels):
            return self._forward(pixels)
        loop = asyncio.get_running_loop()
        job = _Job(pixels, loop.create_future(), loop)
        self._pending += 1
        job.future.add_done_callback(self._done)
        self._jobs.put(job)
        return await job.future

    async def _alone(self, pixels: np.ndarray) -> bool:
        """Whether this small request is the only one in the process, so its forward pass may run inline.

        Handing a lone request to the worker thread and back costs two thread wake-ups, a good part of its time
        on 2 cores. With others in flight the worker keeps the model off the event loop and requests batch as
        usual. One turn of the event loop first lets it read sockets that are ready, so requests already sent
        count too. ONNX Runtime only: its session has its own single thread and may run from any thread (torch's
        thread settings are per thread)."""
        loaded = self.store.current
        if (loaded is None or loaded.backend.name != "onnx" or len(pixels) > INLINE_MAX_IMAGES
                or self._handling > 1 or self._pending):
            return False
        await asyncio.sleep(0)
        return self._handling <= 1 and not self._pending

    def _done(self, _future: asyncio.Future) -> None:
        self._pending -= 1

    def close(self) -> None:
        self._jobs.put(None)
        self._worker.join(timeout=10)

    # ---- the worker thread ----

    def _work(self, threads: int) -> None:
        set_torch_threads(threads)  # torch's thread count is per OS thread (OpenMP): set it where the model runs
        carry: _Job | None = None
        while True:
            first = carry or self._jobs.get()
            if first is None:
                return
            jobs, carry = self._gather(first) if self.enabled else ([first], None)
            self._run(jobs)

    def _gather(self, first: _Job) -> tuple[list[_Job], _Job | None]:
        """The batch starting with ``first``, and a job that did not fit (it starts the next batch)."""
        jobs, size, deadline = [first], len(first.pixels), None
        while size < self.max_batch_size:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                if self.max_wait_s <= 0 or not self._arriving:
                    break
                deadline = deadline or time.monotonic() + self.max_wait_s
                try:
                    job = self._jobs.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
            if job is None:  # closing: finish this batch, then stop
                self._jobs.put(None)
                break
            if size + len(job.pixels) > self.max_batch_size:
                return jobs, job
            jobs.append(job)
            size += len(job.pixels)
        return jobs, None

    def _run(self, jobs: list[_Job]) -> None:
        pixels = jobs[0].pixels if len(jobs) == 1 else np.concatenate([job.pixels for job in jobs])
        try:
            result, error = self._forward(pixels), None
        except Exception as failure:  # every waiting request gets the error (e.g. NoModelLoaded), none hangs
            result, error = None, failure
        with contextlib.suppress(RuntimeError):  # the loop closed (shutdown): nobody is waiting any more
            jobs[0].loop.call_soon_threadsafe(_deliver, jobs, result, error)  # an app has one event loop

    def _forward(self, pixels: np.ndarray) -> BatchResult:
        """Reads the current model once per batch, so a hot swap never splits a batch or fails a request."""
        loaded = self.store.require_current()  # NoModelLoaded: every request of the batch gets it
        chunks = []
        for start in range(0, len(pixels), self.max_batch_size):  # a big request: several passes
            chunk = pixels[start:start + self.max_batch_size]
            started = time.perf_counter()
            chunks.append(predict_probabilities(loaded.backend, chunk, loaded.temperature))
            if self.on_batch is not None:
                self.on_batch(len(chunk), time.perf_counter() - started)
        return (chunks[0] if len(chunks) == 1 else np.concatenate(chunks)), loaded


def _deliver(jobs: list[_Job], result: BatchResult | None, error: Exception | None) -> None:
    """On the event loop: hand each request its slice of the batch (skipping clients that went away)."""
    start = 0
    for job in jobs:
        end = start + len(job.pixels)
        if not job.future.done():
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result((result[0][start:end], result[1]))
        start = end
