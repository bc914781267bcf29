"""One POST through a whole ASGI app in this event loop, no HTTP client, for the benches
that time the real app in process (bench/decision.py, bench/stages.py)."""

from __future__ import annotations

from typing import Any


def post_scope(path: str, body: bytes, cookies: str, origin: str) -> dict[str, Any]:
    """The scope of a POST of ``body`` to ``path`` from a page of ``origin`` (https, the
    host sitecue is served on), with ``cookies``."""
    host = f"cue.{origin.split('://', 1)[1]}"
    headers = [
        (b"host", host.encode()),
        (b"origin", origin.encode()),
        (b"content-type", b"text/plain"),
        (b"content-length", str(len(body)).encode()),
    ]
    if cookies:
        headers.append((b"cookie", cookies.encode()))
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "https", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "headers": headers, "client": ("127.0.0.1", 50000),
        "server": (host, 443),
    }  # fmt: skip


async def post(
    app: Any, path: str, body: bytes, cookies: str, origin: str
) -> tuple[int, list[str], bytes]:
    """The status, the cookies set (``name=value``) and the answer."""
    status, cookies_set, chunks, sent = 0, [], [], False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            cookies_set.extend(
                v.decode().split(";")[0] for n, v in message["headers"] if n == b"set-cookie"
            )
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(post_scope(path, body, cookies, origin), receive, send)
    return status, cookies_set, b"".join(chunks)
