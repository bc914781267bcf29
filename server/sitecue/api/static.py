"""The tag's script (``/cue.js``, content-addressed ``/cue.<version>.js``) and the preview
panel (``/preview.js``), served from the package with long-lived caching."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import Response

from ..errors import (
    NotFound,
)

__all__ = ["load_script", "panel_endpoint", "script_endpoint"]


@dataclass(frozen=True)
class Script:
    """The tag, compressed both ways once, and named by its content's hash."""

    body: bytes
    gzipped: bytes
    brotli: bytes
    version: str

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def load_script() -> Script:
    static = files("sitecue").joinpath("static")
    body = static.joinpath("cue.js").read_bytes()
    brotli = static.joinpath("cue.js.br").read_bytes()
    version = hashlib.sha256(body).hexdigest()[:16]
    return Script(body, gzip.compress(body, 9, mtime=0), brotli, version)


async def script_endpoint(request: Request) -> Response:
    """The tag. ``/cue.js`` (what sites paste) is kept 5 minutes, then revalidated with its
    ETag, so an upgrade reaches every page within minutes; ``/cue.<version>.js`` (the
    version is the ETag) never changes and is kept for a year."""
    script: Script = request.app.state.script
    version = request.path_params.get("version")
    if version is not None and version != script.version:
        raise NotFound(f"version: this server serves cue.{script.version}.js")
    headers = {
        "etag": script.etag,
        "cache-control": "public, max-age=31536000, immutable"
        if version
        else "public, max-age=300",
        "vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == script.etag:
        return Response(status_code=304, headers=headers)
    body = script.body
    accepted = request.headers.get("accept-encoding", "")
    if "br" in accepted:
        body, headers["content-encoding"] = script.brotli, "br"
    elif "gzip" in accepted:
        body, headers["content-encoding"] = script.gzipped, "gzip"
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


async def panel_endpoint(request: Request) -> Response:
    """``/preview.js``: the preview panel, which the tag loads only on a preview link (it is
    not part of the tag, so pages pay nothing for it)."""
    return Response(
        request.app.state.panel,
        media_type="text/javascript; charset=utf-8",
        headers={"cache-control": "public, max-age=300"},
    )
