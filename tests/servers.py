"""Real sitecue processes for tests: started as a user would start them, on a free port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sitecue_process(
    args: list[str],
    env: dict[str, str],
    log: Path,
    health: str,
    cwd: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python -m sitecue.cli *args`` with its output in ``log``, until ``health``
    answers; stop it afterwards. ``preexec_fn`` runs in the child first (to set limits)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sitecue.cli", *args],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )
    try:
        deadline = time.monotonic() + 60  # a demo seeding its history on a busy machine
        while True:
            try:
                urllib.request.urlopen(health, timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"sitecue {args[0]} did not start:\n{log.read_text()}"
                    ) from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)
