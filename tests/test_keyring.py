"""The keyring across a rolling rotation: two nodes on one store, restarted one at a time
through the README's three steps, and a visitor bouncing between them who never loses their
state cookie, their email link or their decisions' feedback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN
from sitecue.app import build_app
from sitecue.keyring import Keyring, Sealer, fingerprint
from sitecue.runtime import Runtime
from sitecue.settings import Settings
from sitecue.state import StateCodec

OLD = "the-old-secret-of-2025-0000"
NEW = "the-new-secret-of-2026-0000"
BOTH = f"k2025:{OLD},k2026:{NEW}"


def test_the_first_secret_signs_and_every_one_verifies() -> None:
    ring = Keyring([NEW, OLD])
    assert ring.mac_key("decision", "news") == Keyring([NEW]).mac_key("decision", "news")
    assert ring.mac_keys("decision", "news")[1] == Keyring([OLD]).mac_key("decision", "news")
    sealed = ring.sealer("state", "news").seal(b"x")
    assert Keyring([NEW]).sealer("state", "news").open(sealed) == b"x"
    assert Keyring([OLD, NEW]).sealer("state", "news").open(sealed) == b"x"
    assert isinstance(ring.sealer("state", "news"), Sealer)


def test_a_fingerprint_names_a_secret_without_revealing_it() -> None:
    assert fingerprint(OLD) == fingerprint(OLD) != fingerprint(NEW)
    assert len(fingerprint(OLD)) == 8 and fingerprint(OLD) not in OLD


@dataclass
class Visitor:
    """A browser's cookies, carried by hand from one node to the other."""

    cookies: dict[str, str] = field(default_factory=dict)
    pageviews: int = 0

    def send(self, client: TestClient, path: str, body: object) -> dict[str, object] | None:
        client.cookies.clear()
        header = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = client.post(path, json=body, headers={"origin": ORIGIN, "cookie": header})
        assert response.status_code in (200, 204), response.text
        for line in response.headers.get_list("set-cookie"):
            name, _, rest = line.partition("=")
            self.cookies[name] = rest.split(";")[0]
        return response.json() if response.status_code == 200 else None

    def view(self, client: TestClient, token: str | None = None) -> dict[str, object]:
        page = {"url": f"{ORIGIN}/news/"}
        event = {"name": "paywall_view", "at": int(time.time() * 1000)}
        body = {"site": "news", "page": page, "events": [event]}
        if token:
            body["token"] = token
        answer = self.send(client, "/v1/decide", body)
        assert answer is not None
        self.pageviews += 1
        return answer

    def state_pageviews(self) -> int:
        codec = StateCodec([NEW, OLD])  # every key the test ever used: what the cookie holds
        state = codec.decode(self.cookies["sc_s"], self.cookies["sc_vid"], "news")
        assert state is not None
        return state.pageviews


@contextmanager
def node(env: dict[str, str], secrets: str, signing: str | None = None) -> Iterator[TestClient]:
    """One node (an app on the shared store), started with these keys."""
    values = {**env, "SITECUE_SECRETS": secrets}
    if signing:
        values["SITECUE_SIGNING_KEY"] = signing
    with TestClient(build_app(Settings.load(env=values)), base_url=ORIGIN) as client:
        yield client


def runtime(client: TestClient) -> Runtime:
    found: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return found


def bounce(visitor: Visitor, a: TestClient, b: TestClient, tokens: list[str]) -> list[str]:
    """The visitor views a page on each node, sends feedback on each decision to the other
    node, and opens every email link still in their inbox on both; nothing may be refused.
    Returns the inbox with a link minted by each node now."""
    for here, there in ((a, b), (b, a)):
        decided = visitor.view(here)
        assert visitor.state_pageviews() == visitor.pageviews  # the state was kept
        decisions = decided["decisions"]
        assert isinstance(decisions, list) and decisions
        feedback = [
            {"type": "impression", "decision": d["id"], "rule": d["rule"], "variant": d["variant"]}
            for d in decisions
        ]
        visitor.send(there, "/v1/events", {"site": "news", "events": feedback})  # 204, not 400
        assert visitor.state_pageviews() == visitor.pageviews
    for token in tokens:
        for client in (a, b):
            assert visitor.view(client, token)["identified"] is True
    for client in (a, b):
        assert not runtime(client).codec.rejected, "a cookie was refused"
        assert not runtime(client).tokens.rejected, "an email link was refused"
    expires = int(time.time()) + 3600
    return [runtime(c).tokens.mint("news", "customer-7", expires) for c in (a, b)]


def test_a_rolling_rotation_in_three_steps_loses_no_visitor_state(env: dict[str, str]) -> None:
    visitor = Visitor()
    running: dict[str, ExitStack] = {}
    nodes: dict[str, TestClient] = {}

    def start(name: str, secrets: str, signing: str | None = None) -> None:
        """(Re)start one node; its neighbour serves all along."""
        if name in running:
            running.pop(name).close()
        running[name] = ExitStack()
        nodes[name] = running[name].enter_context(node(env, secrets, signing))

    def visit(inbox: list[str]) -> list[str]:
        return bounce(visitor, nodes["a"], nodes["b"], inbox)

    try:
        start("a", f"k2025:{OLD}")
        start("b", f"k2025:{OLD}")
        inbox = visit([])
        # Step 1: the new key on every node, node by node; the first entry still signs.
        start("a", BOTH)
        inbox = visit(inbox)
        start("b", BOTH)
        inbox = visit(inbox)
        # Step 2: the new key signs, node by node.
        start("a", BOTH, "k2026")
        inbox = visit(inbox)
        start("b", BOTH, "k2026")
        inbox = visit(inbox)
        # Step 3, once what the old key signed has expired: drop it, node by node. The
        # visitor's cookie and the links minted since step 2 carry the new key.
        start("a", f"k2026:{NEW}")
        inbox = visit(inbox)
        start("b", f"k2026:{NEW}")
        visit(inbox)
    finally:
        for stack in running.values():
            stack.close()
    assert visitor.pageviews == 7 * 2 + 6 * 2 * 2  # every view counted, none forgotten


def test_signing_with_a_key_the_other_node_lacks_resets_visitors(env: dict[str, str]) -> None:
    """The trap the steps avoid (and what "the last secret signs" did when a node got the
    new key first): node A signs with a key node B cannot open, so B starts the visitor
    afresh."""
    visitor = Visitor()
    with node(env, BOTH, "k2026") as a, node(env, f"k2025:{OLD}") as b:
        visitor.view(a)
        visitor.view(a)
        visitor.view(b)
        assert runtime(b).codec.rejected["bad signature"] == 1
        codec = StateCodec([OLD])
        state = codec.decode(visitor.cookies["sc_s"], visitor.cookies["sc_vid"], "news")
        assert state is not None and state.pageviews == 1  # two page views forgotten


def test_the_signing_key_is_logged_by_name_never_the_secret(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="sitecue")
    with node(env, BOTH, "k2026"):
        pass
    assert "keyring: key k2026 signs; keys k2026, k2025 verify" in caplog.text
    assert OLD not in caplog.text and NEW not in caplog.text
