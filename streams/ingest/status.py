"""A tiny HTTP endpoint on the event loop: ``/metrics`` (Prometheus) and ``/healthz`` (JSON).

Kept on the receiver's own asyncio loop so no extra thread reads the counters while the hot path
writes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry


def _response(status: str, content_type: str, body: bytes) -> bytes:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


async def serve_status(host: str, port: int, registry: CollectorRegistry,
                       health: Callable[[], tuple[bool, dict[str, Any]]]) -> asyncio.Server:
    """Start the endpoint; ``health()`` returns (healthy, details). 503 when not healthy."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            parts = request.split(b" ", 2)
            path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b""
            if path == b"/metrics":
                reply = _response("200 OK", CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path in (b"/healthz", b"/health", b"/"):
                ok, details = health()
                reply = _response("200 OK" if ok else "503 Service Unavailable",
                                  "application/json", orjson.dumps(details))
            else:
                reply = _response("404 Not Found", "text/plain", b"try /metrics or /healthz\n")
            writer.write(reply)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass  # a client that left or never spoke HTTP: nothing to answer
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
