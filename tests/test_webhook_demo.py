"""Done when: a form submitted on the demo's news site reaches a local receiver with a valid
signature, through a receiver outage and a SIGKILL of the server in the middle of a
delivery, exactly once as the receiver counts 2xx answers. A real server process, on both
engines."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

from receiver import HANG, Receiver, receiver
from servers import free_port, sitecue_process
from sitecue.webhooks.signing import verify
from sites import CONFIG_DIR
from webhook_sites import SECRET, SECRET_ENV, webhook

NEWS = "https://news.example"


def demo_config(root: Path, url: str) -> Path:
    """The shipped config (the demo's sites), the news site told of form submissions."""
    config = root / "config"
    shutil.copytree(CONFIG_DIR, config)
    news = config / "sites" / "news.json"
    site = json.loads(news.read_text())
    site["webhooks"] = [webhook(url, events=["form.submitted"])]
    news.write_text(json.dumps(site))
    return config


def sign_up(base: str) -> str:
    """The demo's newsletter form, submitted by the first of some fixed browsers that is
    shown a variant with the form (not the control); the submission's decision id."""
    for n in range(100):
        cookies = {"sc_vid": f"webhook-demo-visitor-{n:04d}"}
        with httpx.Client(base_url=base, cookies=cookies, headers={"origin": NEWS}) as client:
            page = {"url": f"{NEWS}/news/", "title": "News"}
            decided = client.post("/v1/decide", json={"site": "news", "page": page})
            assert decided.status_code == 200, decided.text
            offer = [d for d in decided.json()["decisions"] if d["rule"] == "newsletter"]
            if not offer or offer[0]["html"] is None:
                continue
            d = offer[0]
            body: dict[str, Any] = {
                "site": "news", "decision": d["id"], "rule": "newsletter",
                "variant": d["variant"], "fields": {"email": "reader@example.com", "consent": True},
            }  # fmt: skip
            if d["variant"] == "long":
                body["fields"]["interests"] = ["sport"]
            done = client.post("/v1/forms", json=body)
            assert done.status_code == 200, done.text
            return str(d["id"])
    raise AssertionError("no browser was shown the newsletter form")


def wait_for(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(0.05)


def test_a_demo_sign_up_survives_an_outage_and_a_kill_mid_delivery(
    store_url: str, tmp_path: Path
) -> None:
    # Down (503), then holding the next attempt open while the server is killed; then up.
    with receiver([503, HANG]) as got:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "SITECUE_DATA_DIR": str(tmp_path / "data"),
            "SITECUE_SECRETS": "webhook-demo-secret-0000",
            SECRET_ENV: SECRET,
        }
        config = demo_config(tmp_path, got.url)
        args = ["serve", "--config", str(config), "--db", store_url, "--port", str(port)]
        with sitecue_process(args, env, tmp_path / "server.log", f"{base}/healthz") as server:
            decision = sign_up(base)
            wait_for(got.hanging.is_set, 30, "the second attempt")  # after the outage
            server.send_signal(signal.SIGKILL)  # in the middle of a delivery
            server.wait()
        got.release.set()
        assert got.delivered() == {}
        with sitecue_process(args, env, tmp_path / "server2.log", f"{base}/healthz"):
            # The killed attempt's lease (timeout 2 s + 5 s) expires; the restart resumes.
            wait_for(got.delivered, 30, "the delivery after the restart")
            time.sleep(1.5)  # nothing more arrives: one delivery, not two
        check(got, decision)


def check(got: Receiver, decision: str) -> None:
    (message_id,) = got.delivered()
    assert got.delivered()[message_id] == 1
    assert [r.status for r in got.requests] == [503, HANG, 200]
    request = got.messages()[message_id]
    sent_at = int(request.headers["sitecue-signature"].split(",")[0][2:])
    assert verify(SECRET.encode(), request.body, request.headers["sitecue-signature"], sent_at)
    assert abs(sent_at - time.time()) < 120
    message = json.loads(request.body)
    assert message["event"] == "form.submitted" and message["site"] == "news"
    assert message["email"] == "reader@example.com" and message["decision"] == decision
    assert message["id"] == message_id
