"""A second process that loads a sitecue server with page views until it stops answering,
and writes the visitor id of every 2xx answer to a file, one per line, as it comes.

    python tests/load_client.py URL ORIGIN OUT_FILE [CONNECTIONS]
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
from urllib.parse import urlsplit


def main() -> None:
    url, origin, out_path = sys.argv[1:4]
    connections = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    parts = urlsplit(url)
    body = json.dumps(
        {
            "site": "news",
            "page": {"url": f"{origin}/news/articles/1.html"},
            "events": [{"name": "paywall_view"}],
        }
    )
    headers = {"content-type": "application/json", "origin": origin}
    lock = threading.Lock()
    out = open(out_path, "a", buffering=1)  # noqa: SIM115 - line by line, closed at exit

    def worker() -> None:
        # A slow answer on a busy machine is still an answer: only a dead server ends a worker.
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        while True:
            try:
                conn.request("POST", parts.path, body, headers)
                response = conn.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException):
                return  # the server is gone
            if 200 <= response.status < 300:
                with lock:
                    out.write(json.loads(answer)["visitor"] + "\n")

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()


if __name__ == "__main__":
    main()
