"""A minimal asyncio HTTP/1.1 client for the benchmark harness.

Why not httpx: under concurrency its connection pool, not the server, sets
the pace. On this 2-core machine 96 concurrent `GET /healthz` take
0.4-0.6 s through one `httpx.AsyncClient` and 0.05 s over plain asyncio
sockets, so a 32-job burst measured mostly the client. This client opens
one connection per request (`Connection: close`), writes the request in one
go and reads the response to EOF; both servers get the same client.
"""

from __future__ import annotations

import asyncio
import json
import socket


class HttpError(RuntimeError):
    """A response with a 4xx/5xx status."""


class Response:
    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body

    def json(self):
        return json.loads(self.body)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise HttpError(f"HTTP {self.status_code}: {self.body[:300]!r}")


def parse_response(raw: bytes) -> Response:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise HttpError(f"truncated response: {raw[:200]!r}")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = dechunk(body)
    elif b"content-length" in headers:
        body = body[: int(headers[b"content-length"])]
    return Response(status, body)


def dechunk(data: bytes) -> bytes:
    out = bytearray()
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[:size]
        data = data[size + 2 :]


class LeanClient:
    """Just enough of an HTTP client: JSON POST and GET on one host."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    async def request(self, method: str, path: str, body=None, timeout: float | None = None) -> Response:
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()

        async def exchange() -> bytes:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                writer.write(head + payload)
                await writer.drain()
                return await reader.read()
            finally:
                writer.close()

        return parse_response(await asyncio.wait_for(exchange(), timeout))

    async def post(self, path: str, json=None, timeout: float | None = None) -> Response:  # noqa: A002 - httpx's name
        return await self.request("POST", path, json, timeout)

    async def get(self, path: str, timeout: float | None = None) -> Response:
        return await self.request("GET", path, None, timeout)


def probe_health(host: str, port: int) -> bool:
    """Whether `GET /healthz` answers 200 (blocking; for start-up polling)."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        return parse_response(raw).status_code == 200
    except (OSError, HttpError, ValueError, IndexError):
        return False
