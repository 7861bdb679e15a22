"""A loopback HTTP listener that records requests and replays canned responses.

boto3 is pointed at it (``endpoint_url``) so the exact bytes it would send to
AWS can be compared with what the crate builds, and so boto3's own parsers can
be fed the same canned responses as the crate's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Captured:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Canned:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"{}"


class Loopback:
    def __init__(self) -> None:
        self.requests: list[Captured] = []
        self.response = Canned()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append(
                    Captured(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                r = outer.response
                self.send_response(r.status)
                for k, v in r.headers.items():
                    self.send_header(k, v)
                payload = b"" if self.command == "HEAD" else r.body
                self.send_header("Content-Length", str(len(r.body) if self.command != "HEAD" else 0))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def last(self) -> Captured:
        return self.requests[-1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
