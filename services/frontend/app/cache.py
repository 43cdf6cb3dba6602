"""A Redis cache that the page can live without.

Every operation swallows Redis errors: with Redis down the page is served uncached, the outage is logged once
(not once per request), ``/health`` reports it, and caching resumes by itself when Redis is back. After a failure
Redis is skipped for ``retry_s`` seconds, so a black-holed Redis does not add its timeout to every request.
"""

import json
import logging
import threading
import time
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)


class Cache:
    """JSON values under ``prefix``-ed keys, with hit/miss counters (in-process, and in Redis when it is up)."""

    def __init__(self, url: str, prefix: str, timeout_s: float, retry_s: float) -> None:
        self.prefix, self.retry_s = prefix, retry_s
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),  # redis-py retries 10x with backoff by default: we would rather skip
            health_check_interval=0,
        )
        self.hits = self.misses = self.errors = 0
        self.last_error: str | None = None
        self._down_since: float | None = None
        self._lock = threading.Lock()

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(part) for part in parts)

    def get_json(self, key: str) -> Any | None:
        raw = self._run(lambda: self.client.get(key))
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:  # someone else's or a truncated value: treat as a miss
            return None

    def set_json(self, key: str, value: Any, ttl_s: float) -> None:
        if ttl_s > 0:
            self._run(lambda: self.client.set(key, json.dumps(value, separators=(",", ":")), px=int(ttl_s * 1000)))

    def delete(self, key: str) -> None:
        self._run(lambda: self.client.delete(key))

    def count(self, hit: bool) -> None:
        """Count a sample-cache hit or miss here and in Redis (shared by all workers; best effort)."""
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1
        self._run(lambda: self.client.incr(self.key("stats", "hits" if hit else "misses")))

    def shared_counts(self) -> dict[str, int] | None:
        """The hit/miss counters of all workers, from Redis (None when Redis is down)."""
        values = self._run(lambda: self.client.mget(self.key("stats", "hits"), self.key("stats", "misses")))
        if values is None:
            return None
        return {"hits": int(values[0] or 0), "misses": int(values[1] or 0)}

    def ping(self) -> tuple[bool, str]:
        """Ask Redis directly (ignoring the back-off), for /health."""
        try:
            self.client.ping()
        except redis.RedisError as exc:
            self._failed(exc)
            return False, f"unreachable: {exc}"
        self._recovered()
        return True, "ok"

    def _run(self, operation):
        if self._down_since is not None and time.monotonic() - self._down_since < self.retry_s:
            return None
        try:
            result = operation()
        except redis.RedisError as exc:
            self._failed(exc)
            return None
        self._recovered()
        return result

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = str(exc)
            first = self._down_since is None
            self._down_since = time.monotonic()
        if first:
            log.warning("Redis unavailable, serving uncached until it is back: %s", exc)

    def _recovered(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            was_down, self._down_since = self._down_since is not None, None
        if was_down:
            log.warning("Redis is back, caching again")

    def stats(self) -> dict[str, Any]:
        return {"hits": self.hits, "misses": self.misses, "errors": self.errors, "last_error": self.last_error,
                "shared": self.shared_counts()}
