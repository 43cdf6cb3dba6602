"""Misbehaving HTTP clients on raw sockets: uploads that stop half way, trickle, or break the protocol."""

import contextlib
import socket
import struct
import time
from urllib.parse import urlsplit

JSON_BODY = b'{"pixels": [' + b",".join([b"[" + b",".join([b"0"] * 28) + b"]"] * 28) + b"]}"


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def send_only(url: str, data: bytes) -> socket.socket:
    """A connection that has sent ``data`` (e.g. half a request) and waits; the socket is open."""
    sock = socket.create_connection(address(url), timeout=10)
    sock.sendall(data)
    return sock


def partial_upload(url: str, path: str = "/predict", declared: int = 100_000, sent: int = 1_000,
                   headers: dict[str, str] | None = None) -> socket.socket:
    """A POST that announces ``declared`` body bytes and sends ``sent`` of them, then waits (the socket is open)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {address(url)[0]}", "Content-Type: application/json",
             f"Content-Length: {declared}", *(f"{name}: {value}" for name, value in (headers or {}).items())]
    return send_only(url, ("\r\n".join(lines) + "\r\n\r\n").encode() + b" " * sent)


def abort(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), as a client that crashes or loses its network does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def exchange(url: str, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` as is and read the answer until the server closes (or ``timeout``)."""
    with socket.create_connection(address(url), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before it has read everything
            sock.sendall(data)
        answer = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
        return answer


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer (0 when there is none)."""
    first = answer.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) >= 2 and first[1].isdigit() else 0


def body_of(answer: bytes) -> bytes:
    return answer.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in answer else b""
