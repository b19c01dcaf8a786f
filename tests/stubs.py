"""A stub HTTP endpoint on 127.0.0.1 for tests that need a server `breakfix serve` cannot play: a
provider that rejects one prompt, filters another, answers HTML, or refuses a field."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# What the stub answers: (status, body) or (status, body, content type); a dict body is sent as JSON.
Answer = tuple[int, dict | bytes] | tuple[int, dict | bytes, str]


@contextmanager
def stub(answers: Callable[[dict], Answer] | list[Answer]) -> Iterator[tuple[str, list[dict]]]:
    """Serve POSTs with `answers(request)` (or the next answer of a list); yields the base URL
    (`http://127.0.0.1:PORT/v1`) and the list of JSON requests seen, in order."""
    seen: list[dict] = []
    queue = answers if callable(answers) else list(answers)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            status, body, *kind = queue(seen[-1]) if callable(queue) else queue.pop(0)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", kind[0] if kind else "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()
