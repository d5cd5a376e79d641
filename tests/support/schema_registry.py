"""A Confluent Schema Registry stand-in that replays a recorded HTTP exchange.

It answers each request with the next recorded response and keeps what it was
sent, so a test asserts the exact requests (method, path, headers, JSON body).
A request that is not the next recorded one gets a 500 and stays in ``received``
for the assertion to show.  ``down = True`` makes it drop connections without an
answer (a registry that is unreachable mid-request).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).parent.parent / "messaging" / "recorded" / "schema_registry.json"
#: The request headers the exchange pins (others, like User-Agent, vary by client).
PINNED_HEADERS = ("Content-Type", "Accept", "Authorization")


def recorded(scenario: str, prefix: str = "") -> list[dict[str, Any]]:
    """The recorded pairs of ``scenario`` with ``{prefix}`` filled in."""
    text = json.dumps(json.loads(RECORDED.read_text())[scenario])
    return list(json.loads(text.replace("{prefix}", prefix)))


class ReplayRegistry:
    def __init__(self, exchange: list[dict[str, Any]]) -> None:
        self.exchange = list(exchange)
        self.received: list[dict[str, Any]] = []
        self.down = False
        self.dropped = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def expected_requests(self) -> list[dict[str, Any]]:
        return [pair["request"] for pair in self.exchange]

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.received.append(request)
            index = len(self.received) - 1
            if index < len(self.exchange) and self.exchange[index]["request"] == request:
                response: dict[str, Any] = self.exchange[index]["response"]
                return response
        return {
            "status": 500,
            "headers": {},
            "body": {"error_code": 50001, "message": "unexpected"},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if replay.down:
                    replay.dropped += 1
                    self.close_connection = True
                    return  # no status line: the client sees the connection drop
                headers = {k: self.headers[k] for k in PINNED_HEADERS if k in self.headers}
                request = {
                    "method": "POST",
                    "path": self.path,
                    "headers": headers,
                    "body": json.loads(raw) if raw else None,
                }
                response = replay._answer(request)
                body = json.dumps(response["body"]).encode()
                self.send_response(response["status"])
                for name, value in response["headers"].items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        return Handler

    @contextmanager
    def running(self) -> Iterator[ReplayRegistry]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()
