"""Load generation shared by the serving benchmarks: one real test PNG as a multipart body (or the same image as an
Open Inference Protocol request, JSON or binary), driven by ``wrk``.

``wrk`` is C and light on the CPU, so on a small machine most cycles go to the server under test. Its Lua script
sends the same body on every request and prints one machine-readable line: requests, duration, latency
percentiles and every kind of error (non-2xx answers included), so "zero errors" is checked, not assumed.
"""

import io
import json
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
%swrk.body = %s
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


def wrk_script(body: bytes, content_type: str, headers: dict[str, str] | None = None) -> Path:
    """A wrk script that posts ``body`` with this Content-Type (and any other ``headers``) on every request."""
    path = Path(tempfile.mkstemp(prefix="bench-wrk-", suffix=".lua")[1])
    more = "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in (headers or {}).items())
    path.write_text(WRK_SCRIPT % (content_type, more, lua_string(body)))
    return path


def v2_infer_body(pixels: np.ndarray, binary: bool) -> tuple[bytes, str, dict[str, str]]:
    """(body, Content-Type, headers) of an Open Inference Protocol request for uint8 pixels (N, 28, 28), as
    tritonclient sends it: JSON ``data``, or the binary tensor data extension (raw bytes after the JSON header,
    every output answered as raw bytes too)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    tensor = {"name": "pixels", "shape": list(pixels.shape), "datatype": "UINT8"}
    if not binary:
        return json.dumps({"inputs": [{**tensor, "data": pixels.ravel().tolist()}]}).encode(), "application/json", {}
    header = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": pixels.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()
    return header + pixels.tobytes(), "application/octet-stream", {"Inference-Header-Content-Length": str(len(header))}


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
