"""Waiting on a condition instead of on the clock: a test never sleeps a fixed time to let something happen.

``wait_until`` polls the condition itself until it holds. Its deadline is only there so that a broken build fails
instead of hanging: it is far beyond what the slowest step it guards needs (a server start, a model load, a
hot reload: a few seconds here), so a machine four times slower, or busy with other work, waits longer and passes.
"""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEADLINE_S = 120.0


def wait_until(condition: Callable[[], T], what: str, timeout: float = DEADLINE_S, interval: float = 0.05) -> T:
    """The first truthy value of ``condition()``; fails naming ``what`` when ``timeout`` seconds pass without one."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"still waiting after {timeout:.0f} s for {what}"
        time.sleep(interval)
