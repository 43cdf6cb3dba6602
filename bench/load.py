"""Load generation shared by the serving benchmarks: one real test PNG as a multipart body, driven by ``wrk``.

``wrk`` is C and light on the CPU, so on a small machine most cycles go to the server under test. Its Lua script
sends the same body on every request and prints one machine-readable line: requests, duration, latency
percentiles and every kind of error (non-2xx answers included), so "zero errors" is checked, not assumed.
"""

import io
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

BOUNDARY = "benchboundary7d93"
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.status, e.connect + e.read + e.write, e.timeout))
end
"""
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "%s"
wrk.body = %s
""" + WRK_DONE.replace("%", "%%")
WRK_ROTATING_SCRIPT = """
local bodies = {%s}
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "%s"
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[(counter %% #bodies) + 1])
end
""" + WRK_DONE.replace("%", "%%")


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def multipart(data: bytes, field: str = "file") -> tuple[bytes, str]:
    """(body, Content-Type) of a multipart/form-data upload of one PNG."""
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"x.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    return body, f"multipart/form-data; boundary={BOUNDARY}"


def lua_string(data: bytes) -> str:
    return '"' + "".join(f"\\{byte:03d}" for byte in data) + '"'


def wrk_script(body: bytes, content_type: str) -> Path:
    path = Path(tempfile.mkstemp(prefix="bench-wrk-", suffix=".lua")[1])
    path.write_text(WRK_SCRIPT % (content_type, lua_string(body)))
    return path


def wrk_rotating_script(bodies: list[bytes], content_type: str) -> Path:
    """A wrk script that sends ``bodies`` in turn (different images, so no cache or branch predictor flatters)."""
    path = Path(tempfile.mkstemp(prefix="bench-wrk-", suffix=".lua")[1])
    path.write_text(WRK_ROTATING_SCRIPT % (", ".join(lua_string(body) for body in bodies), content_type))
    return path


def wrk(url: str, script: Path, concurrency: int, seconds: int, threads: int = 1) -> dict:
    """One wrk run with ``threads`` threads and ``concurrency`` connections: req/s, p50/p95/p99 (ms) and errors."""
    command = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
               url]
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", output)
    if match is None:
        raise RuntimeError(f"wrk gave no result:\n{output}")
    requests_, duration_us, p50, p95, p99, bad_status, socket_errors, timeouts = map(int, match.groups())
    return {"requests_per_s": round(requests_ / (duration_us / 1e6), 1), "p50_ms": p50 / 1000,
            "p95_ms": p95 / 1000, "p99_ms": p99 / 1000, "non_2xx": bad_status,
            "socket_errors": socket_errors + timeouts, "errors": bad_status + socket_errors + timeouts,
            "requests": requests_}
