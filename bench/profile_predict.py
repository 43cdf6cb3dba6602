"""Where a /predict request's CPU goes (``python -m bench profile_predict``): pyinstrument on the event loop.

The API runs in this process (uvicorn, the default settings otherwise: httptools, uvloop, the model worker
thread) while ``wrk`` posts the same real test PNG at BENCH_PROFILE_CONCURRENCY (default 16) for
BENCH_SECONDS; pyinstrument samples the event loop's thread, which parses, decodes and answers every request
(the model runs in its own thread). Prints the call tree; docs/benchmarks.md's "Per-request cost" section is made
from its output. Not part of ``make bench``: a profiler slows what it watches.
"""

import asyncio
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from pyinstrument import Profiler

from bench.common import data_dir, model_dir
from bench.load import multipart, png, wrk, wrk_script
from services.inference.app.config import Settings
from services.inference.app.main import create_app
from shared.data import load_split

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CONCURRENCY = int(os.environ.get("BENCH_PROFILE_CONCURRENCY", "16"))


def main() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(default_model_dir=model_dir(), artifacts_dir=Path(tempfile.mkdtemp()) / "none",
                        data_dir=data_dir(), download=False, device="cpu", port=port)
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, loop="uvloop", http="httptools")
    server = uvicorn.Server(config)
    image = load_split(data_dir(), train=False, download=False).images.numpy()[0]
    script = wrk_script(*multipart(png(image)))
    url = f"http://127.0.0.1:{port}"
    profiler = Profiler(interval=0.0005, async_mode="disabled")
    loop: list[asyncio.AbstractEventLoop] = []

    def on_loop(call) -> None:  # pyinstrument samples the thread that starts it: the event loop's
        done = threading.Event()
        loop[0].call_soon_threadsafe(lambda: (call(), done.set()))
        done.wait()

    def drive() -> None:
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        wrk(f"{url}/predict", script, CONCURRENCY, 1)  # warm up
        on_loop(profiler.start)
        print(wrk(f"{url}/predict", script, CONCURRENCY, SECONDS))
        on_loop(profiler.stop)
        server.should_exit = True

    async def serve() -> None:
        loop.append(asyncio.get_running_loop())
        await server.serve()

    threading.Thread(target=drive, daemon=True).start()
    uvicorn.config.asyncio_setup = None  # noqa: B010 - nothing: uvloop is installed below
    import uvloop

    uvloop.run(serve())
    print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
