"""A local webhook receiver for tests: a tiny HTTP server on a free port that answers each
POST with the next of its scripted statuses (then 200), and keeps every request."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG = 0


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    url: str
    # Statuses to answer, in turn, then 200; HANG holds the request unanswered until
    # ``release`` is set (at most a minute), then drops the connection.
    answers: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    hanging: threading.Event = field(default_factory=threading.Event)  # one is held now
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self) -> int:
        with self.lock:
            return self.answers.pop(0) if self.answers else 200

    def keep(self, received: Received) -> None:
        with self.lock:
            self.requests.append(received)

    def delivered(self) -> Counter[str]:
        """How many times each message id was answered with a 2xx."""
        with self.lock:
            return Counter(
                r.headers["sitecue-delivery"] for r in self.requests if 200 <= r.status < 300
            )

    def messages(self) -> dict[str, Received]:
        """Each message once, deduplicated by its id header, as a receiver should."""
        with self.lock:
            return {
                r.headers["sitecue-delivery"]: r for r in self.requests if 200 <= r.status < 300
            }


@contextmanager
def receiver(answers: list[int] | None = None, port: int = 0) -> Iterator[Receiver]:
    """A receiver listening on 127.0.0.1 until the block ends."""
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            status = box[0].answer()
            headers = {k.lower(): v for k, v in self.headers.items()}
            box[0].keep(Received(headers, body, status))
            if status == HANG:
                box[0].hanging.set()
                box[0].release.wait(60)
                self.close_connection = True
                return
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # many senders at once are queued, not reset

    server = Server(("127.0.0.1", port), Handler)
    box.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", answers or []))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()
