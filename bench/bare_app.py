"""The baseline for bench/decide.py: bare Starlette endpoints on the tag's two paths, served
the same way as sitecue (uvicorn, same workers): ``/v1/decide`` reads the body and answers
a constant 1 KB of JSON, ``/v1/events`` reads it and answers 204 as sitecue does."""

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


async def no_content(request: Request) -> Response:
    await request.body()
    return Response(status_code=204)


app = Starlette(
    routes=[
        Route("/v1/decide", constant, methods=["POST"]),
        Route("/v1/events", no_content, methods=["POST"]),
    ]
)
