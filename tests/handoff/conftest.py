"""Fixtures shared by the handoff tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict]
    fail_next = False

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        if type(self).fail_next:
            type(self).fail_next = False
            self.send_response(500)
            self.end_headers()
            return
        type(self).received.append({"path": self.path, "body": body})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook(settings):
    """A Slack-compatible incoming webhook on 127.0.0.1 that records what it gets."""
    handler = type("Handler", (_Recorder,), {"received": [], "fail_next": False})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.HANDOFF_SLACK_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hooks/sales"
    yield handler
    server.shutdown()
    server.server_close()
