"""Latency of POST /v1/forms in process: the real app, a real database, one submission at a
time (each committed before its answer), p50 and p99 over N submissions.

Each browser decides once and submits five forms (the per-browser limit), each with its own
address (the per-address limit is three an hour). The time includes the test client's own
overhead (a thread hop per request), so a real server answers at least as fast.

    python bench/forms.py [N]            # SQLite in a temporary directory
    SITECUE_DB=postgresql://… python bench/forms.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from starlette.testclient import TestClient  # noqa: E402

from forms_site import FORMS, write_config  # noqa: E402
from sitecue.app import build_app  # noqa: E402
from sitecue.settings import Settings  # noqa: E402


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "SITECUE_DATA_DIR": tmp,
            "SITECUE_SECRETS": "bench-forms-secret-0000",
            "SITECUE_CONFIG_DIR": str(write_config(Path(tmp))),
        }
        if "SITECUE_DB" in os.environ:
            env["SITECUE_DB"] = os.environ["SITECUE_DB"]
        took: list[float] = []
        with TestClient(build_app(Settings.load(env=env)), base_url=FORMS) as client:
            for i in range(n):
                if i % 5 == 0:
                    client.cookies.clear()
                    decided = client.post(
                        "/v1/decide",
                        json={"site": "forms", "page": {"url": f"{FORMS}/signup"}},
                        headers={"origin": FORMS},
                    ).json()["decisions"]
                    [d] = [d for d in decided if d["rule"] == "newsletter"]
                body = {"site": "forms", "decision": d["id"], "rule": "newsletter",
                        "variant": "short", "id": f"bench-{i:08d}",
                        "fields": {"email": f"reader{i}@example.com", "interests": ["sport"],
                                   "consent": True}}  # fmt: skip
                start = time.perf_counter()
                response = client.post("/v1/forms", json=body, headers={"origin": FORMS})
                took.append(time.perf_counter() - start)
                assert response.status_code == 200, response.text
        cuts = statistics.quantiles(took, n=100)
        engine = env.get("SITECUE_DB", "sqlite").split(":")[0]
        print(f"POST /v1/forms on {engine}, {n} submissions one at a time:"
              f" p50 {cuts[49] * 1000:.2f} ms, p99 {cuts[98] * 1000:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
