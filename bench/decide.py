"""``POST /v1/decide`` and ``POST /v1/events`` over HTTP against bare Starlette endpoints on
the same paths (bench/bare_app.py), and where a decision's time goes, stage by stage.

Both servers run the same way (uvicorn, 2 workers, this machine) and take the same load from
wrk: first as fast as they go (peak requests/s), then paced at half of sitecue's peak for
p50/p99 latency. Each request is what the tag sends for a returning reader: the cookies of
one who met the paywall twice today (so the paywall rule shows), and a call id (decide) or
an event id (events) of its own, so every request's records are stored: committed to
SQLite before the answer. CPU time per request is the servers' own, from their processes'
CPU counters over the peak run, so it compares across machines. The stages come from an
in-process run of the real app (see stages()).

Targets (issue 20), for each endpoint in every run: peak >= 0.5x bare, p99 < 10 ms paced.

    python bench/decide.py [--runs 3] [--seconds 8]     # needs wrk (apt-get install wrk)
    python bench/decide.py --stages | --http             # one part only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "https://news.example"
SECRET = "bench-secret-0123456789"
CONNECTIONS = 32
DECIDE = {
    "site": "news",
    "page": {"url": f"{ORIGIN}/news/articles/2.html", "title": "Story", "viewport": "desktop"},
    "events": [{"name": "paywall_view"}],
    "view": "bench-view",
}
_TICK = os.sysconf("SC_CLK_TCK")


def start(args: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{port}/v1/decide", b"{}"), timeout=1
            )
        except urllib.error.HTTPError:
            return proc  # answering (a 4xx for the empty body is fine)
        except OSError:
            time.sleep(0.1)
        else:
            return proc
    proc.kill()
    raise RuntimeError(f"server on {port} did not start")


def post(port: int, path: str, body: dict[str, Any], cookies: str) -> tuple[str, bytes]:
    """One call as the tag makes it: the cookies it then holds, and the answer."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        json.dumps(body).encode(),
        {"origin": ORIGIN, "cookie": cookies, "content-type": "text/plain"},
    )
    with urllib.request.urlopen(request) as response:
        set_cookies = response.headers.get_all("set-cookie") or []
        answer = response.read()
    if set_cookies:
        cookies = "; ".join(c.split(";")[0] for c in set_cookies)
    return cookies, answer


def returning_reader(port: int) -> tuple[str, dict[str, Any]]:
    """The cookies of a reader who met the paywall twice today, and a page event of theirs
    (``sitecue('event', 'share')``) as the tag sends it to /v1/events. Not an impression:
    a decision's impression is stored once, and every replay of it would be deduplicated."""
    cookies = ""
    for i in range(2):
        cookies, _ = post(port, "/v1/decide", {**DECIDE, "call": f"bench-warm-{i}"}, cookies)
    return cookies, {"site": "news", "events": [{"type": "event", "name": "share", "id": "%s"}]}


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (uvicorn's workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo.extend(children.get(found[-1], []))
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User and system CPU time each process has used so far."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return used


class Load:
    """wrk against one server and path, each request with an id of its own."""

    made = 0

    def __init__(
        self, server: subprocess.Popen[bytes], port: int, path: str, body: dict[str, Any],
        cookies: str, seconds: int,
    ) -> None:  # fmt: skip
        self.server_pid = server.pid
        self.port, self.path, self.cookies, self.seconds = port, path, cookies, seconds
        template = json.dumps(body)
        if "call" not in body and "%s" not in template:
            template = json.dumps({**body, "call": "%s"})
        self.template = template.replace("%", "%%").replace('"%%s"', '"%s"')
        self.runs = self.retried = 0
        Load.made += 1
        self.prefix = f"wrk{os.getpid()}l{Load.made}"  # ids unique to this process and load

    def run(self, wait_ms: float | None = None) -> dict[str, float]:
        """Run wrk; with ``wait_ms``, each connection waits that long after each response.
        The workers share one listening socket, and the kernel may hand most of wrk's
        connections to one of them: that measures a node of one worker, so such a run (its
        busiest worker used over 70% of the workers' CPU) is run again, at most twice."""
        for _ in range(3):
            result = self._run(wait_ms)
            if result["busiest"] <= 0.7:
                break
            self.retried += 1
        return result

    def _run(self, wait_ms: float | None) -> dict[str, float]:
        self.runs += 1
        # A fixed wait keeps the connections in step: all of them answered in one burst wait
        # alike and send the next burst together, a peak-rate burst every cycle rather than a
        # pace. Waits drawn from an exponential (seeded per thread) spread them out, as
        # independent visitors arrive.
        delay = (
            f"function init(args) math.randomseed(tid) end\n"
            f"function delay() return -{wait_ms:.3f} * math.log(1 - math.random()) end"
            if wait_ms is not None
            else ""
        )
        prefix = f"{self.prefix}r{self.runs}"
        script = f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain"
wrk.headers["Origin"] = "{ORIGIN}"
wrk.headers["Cookie"] = "{self.cookies}"
local threads, n = 0, 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function request()
  n = n + 1
  local id = string.format("{prefix}t%dn%d", tid, n)
  return wrk.format(nil, nil, nil, string.format([==[{self.template}]==], id))
end
{delay}
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %f %f %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status + summary.errors.connect
    + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(script)
        pids = descendants(self.server_pid)
        before = cpu_seconds(pids)
        url = f"http://127.0.0.1:{self.port}{self.path}"
        try:
            out = subprocess.run(
                ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{self.seconds}s", "-s", f.name, url],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
        finally:
            os.unlink(f.name)
        time.sleep(0.2)  # the commits of the last requests answered, counted too
        after = cpu_seconds(pids)
        used = sorted((after[pid] - before.get(pid, 0) for pid in after), reverse=True)
        cpu, workers = sum(used), used[:2]
        match = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) (\d+)", out)
        if match is None or int(match[1]) == 0:
            raise RuntimeError(f"wrk completed no request against {url}:\n{out}")
        requests, micros, p50, p99, errors = match.groups()
        return {
            "rps": int(requests) / (int(micros) / 1e6),
            "p50_ms": float(p50) / 1000,
            "p99_ms": float(p99) / 1000,
            "errors": int(errors),
            "cpu_us": cpu / int(requests) * 1e6,
            "busiest": workers[0] / sum(workers) if sum(workers) else 1.0,
        }

    def paced(self, rate: float) -> dict[str, float]:
        """Load at about ``rate`` requests/s. wrk (unlike wrk2) cannot hold a rate: it waits
        after each response, so a connection's cycle is latency + wait. A first run with the
        naive wait shows the cycle really taken; the second corrects the wait by the gap."""
        wanted = CONNECTIONS * 1000 / rate
        taken = CONNECTIONS * 1000 / self.run(wanted)["rps"]
        return self.run(max(wanted - (taken - wanted), 0))


def row(name: str, r: dict[str, float]) -> str:
    latency = f"p50 {r['p50_ms']:5.2f} ms  p99 {r['p99_ms']:6.2f} ms"
    cpu = f"{r['cpu_us']:4.0f} µs CPU a request, busiest worker {r['busiest']:.0%}"
    return f"    {name:15} {r['rps']:6.0f} req/s  {latency}  {cpu}"


def one_run(seconds: int) -> dict[str, bool]:
    """Both servers, both endpoints: the figures printed, and which targets were met."""
    data = Path(tempfile.mkdtemp(prefix="sitecue-bench-"))
    # A fresh SQLite store in ``data`` for each run (no SITECUE_DB or root path from outside).
    outside = ("SITECUE_DB", "SITECUE_ROOT_PATH")
    inherited = {k: v for k, v in os.environ.items() if k not in outside}
    env = {
        **inherited,
        "SITECUE_DATA_DIR": str(data),
        "SITECUE_SECRETS": SECRET,
        "SITECUE_CONFIG_DIR": str(ROOT / "config"),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [os.environ.get("PYTHONPATH"), str(ROOT / "bench")])
        ),
    }
    uvicorn = [sys.executable, "-m", "uvicorn", "--workers", "2", "--log-level", "warning",
               "--no-access-log"]  # fmt: skip
    sitecue = start(
        [*uvicorn, "--factory", "sitecue.cli:app_from_environment", "--port", "8971"], 8971, env
    )
    bare = start([*uvicorn, "bare_app:app", "--port", "8972"], 8972, env)
    met = {}
    try:
        cookies, events = returning_reader(8971)
        print(f"  the reader's cookies: {len(cookies)} B")
        for path, body in (("/v1/decide", DECIDE), ("/v1/events", events)):
            ours = Load(sitecue, 8971, path, body, cookies, seconds)
            theirs = Load(bare, 8972, path, body, cookies, seconds)
            peak_bare, peak = theirs.run(), ours.run()
            half = ours.paced(peak["rps"] / 2)
            half_bare = theirs.paced(peak["rps"] / 2)
            ratio = peak["rps"] / peak_bare["rps"]
            met[f"{path} peak"] = ratio >= 0.5
            met[f"{path} p99"] = half["p99_ms"] < 10
            errors = sum(r["errors"] for r in (peak, half, peak_bare, half_bare))
            print(f"  POST {path}, peak ({CONNECTIONS} connections):")
            print(row("bare Starlette", peak_bare))
            print(row("sitecue", peak) + f"   ratio {ratio:.2f} (target >= 0.5)")
            print(f"  paced at half of sitecue's peak (~{peak['rps'] / 2:.0f} req/s):")
            print(row("bare Starlette", half_bare))
            print(row("sitecue", half) + "   (target p99 < 10 ms)")
            retried = ours.retried + theirs.retried
            print(f"  errors (non-2xx, connection): {errors}; unbalanced runs retried: {retried}")
    finally:
        for proc in (sitecue, bare):
            proc.terminate()
            proc.wait()
        shutil.rmtree(data, ignore_errors=True)
    return met


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--stages", action="store_true", help="the in-process stages only")
    parser.add_argument("--http", action="store_true", help="the HTTP figures only")
    args = parser.parse_args()
    if not args.http:
        from stages import stages

        asyncio.run(stages())
    if args.stages:
        return
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk for the HTTP figures")
    print(f"HTTP, 2 uvicorn workers each, {os.cpu_count()} cores shared with wrk:")
    tally: dict[str, int] = {}
    for run in range(1, args.runs + 1):
        print(f" run {run} of {args.runs}:")
        for target, ok in one_run(args.seconds).items():
            tally[target] = tally.get(target, 0) + ok
    for target, times in tally.items():
        print(f"  {target:22} target met in {times} of {args.runs} runs")


if __name__ == "__main__":
    main()
