"""SIGTERM and SIGINT as a flag the training loop reads before every step (``docker stop``, Ctrl-C, a scheduler
taking the machine back): the epoch in progress is abandoned, the last completed one stays saved for resuming."""

import logging
import signal

log = logging.getLogger("trainer")


class StopRequested(Exception):
    """SIGTERM or SIGINT arrived; the epoch in progress is abandoned, the last completed one is kept."""


class StopFlag:
    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        log.info("received %s: stopping after the current batch", signal.Signals(signum).name)
        self.requested = True
