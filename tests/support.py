"""Helpers shared by test modules of several layers (fixtures live in the conftest.py files).

* ``FakeMetadata``: an instance-metadata endpoint (IMDSv2) on 127.0.0.1 for the batch worker.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeMetadata:
    """IMDSv2 on 127.0.0.1: a token, then 404 until ``notice()``, then a termination notice."""

    def __init__(self) -> None:
        self.notice_at: float | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_PUT(self) -> None:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"fake-token")

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") != "fake-token":
                    self.send_response(401)
                    self.end_headers()
                    return
                if outer.notice_at is None or not self.path.endswith("/spot/instance-action"):
                    self.send_response(404)
                    self.end_headers()
                    return
                when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(outer.notice_at + 120))
                body = json.dumps({"action": "terminate", "time": when}).encode()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def notice(self) -> None:
        self.notice_at = time.time()

    def close(self) -> None:
        self.server.shutdown()
