"""Serving over HTTP: uvicorn with limits, so that slow and hostile clients cannot starve
visitors, and with the reverse proxy's word on scheme and client address trusted only
from the proxy.

The flags and ``SITECUE_*`` variables of ``sitecue serve``, and the uvicorn it starts:
every connection runs :mod:`sitecue.connections`' guarded protocol, which holds it to the
limits set here (header and body timeouts, a header size, a connection cap).

Example::

    sitecue serve --proxy-headers --forwarded-allow-ips 10.0.0.5 --max-connections 4000
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import resource
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from . import rootpath
from .connections import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES,
    PROTOCOL,
    Limits,
    limits_of_this_worker,
)
from .settings import positive, setting

__all__ = ["LOG_CONFIG", "ServeOptions", "add_arguments", "run"]

log = logging.getLogger("sitecue")

LOG_CONFIG: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
"""uvicorn's logging, and the ``sitecue`` logger's INFO lines (reloads, config versions
applied) in the same format on stderr: uvicorn's own stay at warning. uvicorn applies it in
each worker process it starts, so every worker's lines show."""
LOG_CONFIG["loggers"]["sitecue"] = {"handlers": ["default"], "level": "INFO", "propagate": False}

DEFAULT_KEEP_ALIVE_TIMEOUT = 5
DEFAULT_FORWARDED_ALLOW_IPS = "127.0.0.1,::1"
RESERVED_DESCRIPTORS = 64
"""Kept free of client connections for the database, the log and the config files."""


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _root_path(text: str) -> str:
    return rootpath.parse(text)


_root_path.__name__ = "root path"  # what argparse calls it in an error


_COUNT = "a whole number above 0"


@dataclass(frozen=True)
class ServeOptions:
    """``sitecue serve``'s flags, then ``SITECUE_*`` variables, then defaults."""

    host: str
    port: int
    workers: int
    proxy_headers: bool
    forwarded_allow_ips: str
    root_path: str
    keep_alive_timeout: int
    limits: Limits

    @classmethod
    def load(cls, args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> ServeOptions:
        return cls(
            host=args.host,
            port=args.port,
            workers=args.workers,
            proxy_headers=setting(
                args.proxy_headers, env, "SITECUE_PROXY_HEADERS", _boolean, True, "true or false"
            ),
            forwarded_allow_ips=setting(
                args.forwarded_allow_ips, env, "SITECUE_FORWARDED_ALLOW_IPS", str,
                DEFAULT_FORWARDED_ALLOW_IPS, "addresses",
            ),
            root_path=setting(
                args.root_path, env, "SITECUE_ROOT_PATH", _root_path, "", rootpath.MEANING
            ),
            keep_alive_timeout=setting(
                args.keep_alive_timeout, env, "SITECUE_KEEP_ALIVE_TIMEOUT", positive(int),
                DEFAULT_KEEP_ALIVE_TIMEOUT, _COUNT,
            ),
            limits=Limits.load(vars(args), env),
        )  # fmt: skip


def add_arguments(serve: argparse.ArgumentParser) -> None:
    """The flags of ``sitecue serve`` that shape the HTTP server."""
    proxy = serve.add_argument_group(
        "behind a reverse proxy",
        "Put nginx (or another proxy) in front of sitecue for internet-facing use, and pass "
        "its X-Forwarded-Proto and X-Forwarded-For. Cookies get Secure when the request was "
        "https: the scheme sitecue sees, or the one X-Forwarded-Proto names when the "
        "connection comes from an address in --forwarded-allow-ips. From any other address "
        "the headers are ignored, so nobody can fake an https request or a client address.",
    )
    proxy.add_argument(
        "--proxy-headers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="trust X-Forwarded-Proto/-For from --forwarded-allow-ips "
        "(SITECUE_PROXY_HEADERS, default true)",
    )
    proxy.add_argument(
        "--forwarded-allow-ips",
        metavar="ADDRS",
        help="comma-separated addresses or networks of the proxy, '*' for any "
        f"(SITECUE_FORWARDED_ALLOW_IPS, default {DEFAULT_FORWARDED_ALLOW_IPS})",
    )
    proxy.add_argument(
        "--root-path",
        type=_root_path,
        metavar="PATH",
        help="the path the proxy serves sitecue under and strips from requests, such as "
        "/sc: every URL and cookie path sitecue makes starts with it "
        "(SITECUE_ROOT_PATH, default none)",
    )
    limits = serve.add_argument_group(
        "limits", "What slow or hostile clients may hold; each worker applies them."
    )
    limits.add_argument(
        "--keep-alive-timeout",
        type=positive(int),
        metavar="S",
        help="close an idle connection after S seconds "
        f"(SITECUE_KEEP_ALIVE_TIMEOUT, default {DEFAULT_KEEP_ALIVE_TIMEOUT})",
    )
    limits.add_argument(
        "--header-timeout",
        type=positive(float),
        metavar="S",
        help="answer 408 when a request's headers take longer "
        f"(SITECUE_HEADER_TIMEOUT, default {DEFAULT_HEADER_TIMEOUT:g})",
    )
    limits.add_argument(
        "--body-timeout",
        type=positive(float),
        metavar="S",
        help="answer 408 when a body pauses longer "
        f"(SITECUE_BODY_TIMEOUT, default {DEFAULT_BODY_TIMEOUT:g})",
    )
    limits.add_argument(
        "--max-header-bytes",
        type=positive(int),
        metavar="N",
        help="answer 431 to larger headers "
        f"(SITECUE_MAX_HEADER_BYTES, default {DEFAULT_MAX_HEADER_BYTES})",
    )
    limits.add_argument(
        "--max-connections",
        type=positive(int),
        metavar="N",
        help="open connections per worker; past it the one waiting longest on its client "
        "is closed (SITECUE_MAX_CONNECTIONS, default "
        f"{DEFAULT_MAX_CONNECTIONS}, at most the descriptor limit less {RESERVED_DESCRIPTORS})",
    )


def raise_descriptor_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (workers inherit
    it); return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # keep the soft limit we have
    return soft


def run(app: str, options: ServeOptions, *, factory: bool = True) -> None:
    """Serve ``app`` (an import path) with ``options`` until stopped."""
    descriptors = raise_descriptor_limit()
    limits = options.limits
    usable = max(1, descriptors - RESERVED_DESCRIPTORS)
    if limits.max_connections > usable and limits.max_connections != DEFAULT_MAX_CONNECTIONS:
        log.warning(
            "max connections lowered to %d per worker: the descriptor limit is %d",
            usable,
            descriptors,
        )
    # The workers read their limits from the environment they inherit.
    connections = min(limits.max_connections, usable)
    os.environ.update(replace(limits, max_connections=connections).variables())
    limits_of_this_worker.cache_clear()
    # The node's metrics directory: fresh for this server, 0700 (mkdtemp), removed when it
    # stops; every worker writes its values there and /metrics sums them.
    metrics = tempfile.mkdtemp(prefix="sitecue-metrics-")
    os.environ["SITECUE_METRICS_DIR"] = metrics
    try:
        _run_uvicorn(app, options, factory)
    finally:
        os.environ.pop("SITECUE_METRICS_DIR", None)
        shutil.rmtree(metrics, ignore_errors=True)


def _run_uvicorn(app: str, options: ServeOptions, factory: bool) -> None:
    uvicorn.run(
        app,
        factory=factory,
        host=options.host,
        port=options.port,
        workers=options.workers,
        http=PROTOCOL,
        proxy_headers=options.proxy_headers,
        forwarded_allow_ips=options.forwarded_allow_ips,
        root_path=options.root_path,
        timeout_keep_alive=options.keep_alive_timeout,
        log_level="warning",
        log_config=LOG_CONFIG,
    )
