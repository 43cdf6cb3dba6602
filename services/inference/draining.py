"""uvicorn with a drain period: after SIGTERM the API keeps serving SHUTDOWN_DELAY_S seconds, then shuts down.

Why: a load balancer that finds the replicas by DNS learns of a stop late. Docker Swarm drops a stopping task
from its DNS answers 2 s before it sends SIGTERM, but the edge (nginx) keeps the addresses it resolved for 5 s
(`resolver ... valid=5s`). A replica that closed its socket at once would, for up to 3 s more, be sent requests
it no longer takes: refused connections nginx retries elsewhere, but also connections it accepted and then
closed unread in the instant of closing, which nginx must not resend (a POST that was sent) and answers 502.
Serving on for longer than that window makes a rolling update fail no request (`make swarm-smoke` counts them).
After the delay uvicorn's own graceful shutdown runs: no new connections, requests in flight are finished.

The delay applies to SIGTERM only; a second SIGTERM, or SIGINT (Ctrl-C), stops at once. With several workers the
parent process holds the SIGTERM back from its workers for the delay (Docker signals only the container's main
process); with one worker the server itself waits.
"""

import logging
import signal
import socket
import sys
import threading
import time
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

log = logging.getLogger("services.inference")


def _announce(delay_s: float) -> None:
    log.info("SIGTERM: serving for %.1f s more (SHUTDOWN_DELAY_S), then finishing the requests in flight", delay_s)


class DrainingServer(uvicorn.Server):
    """One worker: the first SIGTERM sets uvicorn's exit flag only after ``delay_s``."""

    def __init__(self, config: uvicorn.Config, delay_s: float) -> None:
        super().__init__(config)
        self.delay_s = delay_s
        self.draining: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self.delay_s > 0 and self.draining is None:
            _announce(self.delay_s)
            self.draining = threading.Timer(self.delay_s, super().handle_exit, (sig, frame))
            self.draining.daemon = True
            self.draining.start()
            return
        super().handle_exit(sig, frame)


class DrainingMultiprocess(Multiprocess):
    """Several workers: the parent passes the first SIGTERM on to its workers only after ``delay_s``."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], delay_s: float) -> None:
        super().__init__(config, sockets)
        self.delay_s = delay_s
        self.stop_at: float | None = None

    def handle_term(self) -> None:
        if self.delay_s > 0 and self.stop_at is None:
            _announce(self.delay_s)
            self.stop_at = time.monotonic() + self.delay_s
            return
        super().handle_term()

    def keep_subprocess_alive(self) -> None:  # called every 0.5 s by the supervisor's loop
        if self.stop_at is not None and time.monotonic() >= self.stop_at:
            super().handle_term()
            return
        super().keep_subprocess_alive()


def serve(config: uvicorn.Config, delay_s: float) -> None:
    """What ``uvicorn.run`` does for an import string or factory (one process, or config.workers of them),
    with the drain period."""
    if config.workers > 1:
        DrainingMultiprocess(config, sockets=[config.bind_socket()], delay_s=delay_s).run()
        return
    server = DrainingServer(config, delay_s)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
