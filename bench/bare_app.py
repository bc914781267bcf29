"""The baseline for bench/decide.py: a bare Starlette endpoint answering a constant 1 KB
JSON body, served the same way as sitecue (uvicorn, same workers)."""

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = json.dumps({"decisions": [], "padding": "x" * 990}).encode()
assert 1000 <= len(BODY) <= 1100


async def constant(request: Request) -> Response:
    await request.body()
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route("/v1/decide", constant, methods=["POST"])])
