"""Delivery: a background task that claims due outbox messages, POSTs each to its webhook,
signed, and settles the attempt.

A 2xx ends a message (``delivered``); a 410 disables its webhook (nothing more goes to that
URL until an operator retries a message of it, or the config changes the URL; its messages,
that one too, wait as ``pending`` and get a new day of tries when it is enabled again);
anything else (another status, a timeout, a refused connection) is tried again after an
exponential backoff with jitter (between half and all of 2 s, 4 s, 8 s… up to an hour)
for a day from the first try, and then it is ``dead``. Messages are
leased for one attempt (see :mod:`sitecue.store.outbox`), so any number of processes and
nodes deliver together, each message by one of them at a time, and one killed mid-attempt
leaves a lease that expires: the message is tried again.

The clock and the jitter's random source are injected, so tests move time instead of
waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx2 as httpx

from ..errors import WebhookBodyInvalid
from ..store import Attempt, Claimed, Store
from ..store.outbox import KEEP_DAYS
from . import bodies
from .signing import HEADER, sign
from .targets import CompiledWebhook

if TYPE_CHECKING:
    from ..metrics import Metrics
    from ..rules import CompiledSite

__all__ = ["RETRY_FOR_MS", "Deliverer", "backoff", "outcome"]

log = logging.getLogger("sitecue")

RETRY_FOR_MS = 24 * 3600 * 1000  # a message failing this long after its first try is dead
FIRST_DELAY_MS = 2_000
MAX_DELAY_MS = 3600 * 1000
LEASE_MARGIN_MS = 5_000  # a lease outlasts the attempt's whole timeout by this much
_ERROR_CHARS = 200
PRUNE_EVERY_S = 3600.0  # how often delivered and dead messages past their keeping go
PRUNE_BATCH = 500


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def backoff(attempts: int, rng: random.Random) -> int:
    """How long (ms) to wait after the ``attempts``-th failed attempt: a random time
    between half and all of a step that doubles from 2 s up to an hour, so that a receiver
    back from an outage is not hit by every message at one instant, and waits still grow."""
    base = min(FIRST_DELAY_MS * 2 ** min(attempts - 1, 32), MAX_DELAY_MS)
    return int(base * (1 + rng.random()) / 2)


def outcome(
    claimed: Claimed, code: int | None, error: str | None, now: int, rng: random.Random
) -> Attempt:
    """What an attempt that got ``code`` (or failed with ``error``) at ``now`` comes to."""
    if code is not None and 200 <= code < 300:
        return Attempt("delivered", now, code)
    if code == 410:
        # The webhook is disabled (the store records it), not the message: it waits, due
        # again as soon as the webhook is enabled.
        return Attempt("pending", now, code, "410 Gone: the webhook is disabled", now)
    error = error or f"HTTP {code}"
    last = claimed.since + RETRY_FOR_MS
    if now >= last:
        return Attempt("dead", now, code, error)
    next_try = min(now + backoff(claimed.attempts + 1, rng), last)
    return Attempt("pending", now, code, error, next_try)


class Deliverer:
    """Delivers the outbox of every configured webhook of ``sites()`` (called for each
    claim, so a reload's webhooks take over at once)."""

    def __init__(
        self,
        store: Store,
        sites: Callable[[], Mapping[str, CompiledSite]],
        metrics: Metrics | None = None,
        *,
        clock: Callable[[], int] = _now_ms,
        rng: random.Random | None = None,
        concurrency: int = 32,
        idle_s: float = 1.0,
    ) -> None:
        self.store = store
        self.sites = sites
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()
        self.concurrency = concurrency
        # Attempts under way per webhook are capped, so that one site's receiver that
        # answers slowly (or never, until the timeout) cannot hold every slot.
        self.per_target = max(1, concurrency // 4)
        self._busy: Counter[str] = Counter()  # target -> attempts under way
        self.idle_s = idle_s  # how often other nodes' new messages are looked for
        # Redirects are not followed: a message (personal data, signed) goes to the URL the
        # operator configured, nowhere a receiver points it.
        self.client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        self._inflight: set[asyncio.Task[None]] = set()
        self._disabled: tuple[int, dict[str, str]] = (-1, {})  # (read at, target -> url)
        self._pruned = -PRUNE_EVERY_S  # monotonic seconds of the last prune
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sitecue-delivery")

    def wake(self) -> None:
        """New messages were committed here, or one retried (its webhook perhaps enabled
        again): look for them now, not at the next poll."""
        self._disabled = (-1, {})
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming; let attempts under way finish (they are bounded by their
        timeouts); what is left is claimed again once its lease expires."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=5)
        for task in self._inflight:
            task.cancel()
        await self.client.aclose()

    async def _webhooks(self, disabled: Mapping[str, str]) -> dict[str, CompiledWebhook]:
        """The webhooks to deliver for, by target; not those disabled at their URL. One
        disabled at another URL than the config's now is enabled (with a new day of tries
        for its waiting messages)."""
        hooks = {}
        for site in self.sites().values():
            for hook in site.webhooks:
                gone = disabled.get(hook.target)
                if gone == hook.url:
                    continue
                if gone is not None:
                    await self.store.enable_webhook(hook.target, gone, self.clock())
                    self._disabled = (-1, {})
                    log.info("webhook %s: enabled again at its new URL", hook.target)
                hooks[hook.target] = hook
        return hooks

    async def _disabled_targets(self) -> dict[str, str]:
        """The webhooks a 410 disabled (target -> URL), read at most once per poll: a
        retry on another node re-enables its webhook here within ``idle_s``."""
        read_at, disabled = self._disabled
        now = time.monotonic_ns()
        if read_at < 0 or now - read_at >= self.idle_s * 1e9:
            found = await self.store.disabled_webhooks()
            disabled = {f"{d.site}/{d.webhook}": d.url for d in found}
            self._disabled = (now, disabled)
        return disabled

    async def _claim(self, limit: int) -> list[tuple[Claimed, CompiledWebhook]]:
        if not any(site.webhooks for site in self.sites().values()):
            return []  # no site has webhooks: no query at all
        hooks = await self._webhooks(await self._disabled_targets())
        if not hooks or limit <= 0:
            return []
        targets = [t for t in sorted(hooks) if self._busy[t] < self.per_target]
        if not targets:
            return []
        rooms = [self.per_target - self._busy[t] for t in targets]
        lease = max(hooks[t].timeout for t in targets) * 1000 + LEASE_MARGIN_MS
        claimed = await self.store.claim_messages(targets, self.clock(), int(lease), limit, rooms)
        self._busy.update(c.message.target for c in claimed)  # until its _attempt ends
        return [(c, hooks[c.message.target]) for c in claimed]

    async def deliver_due(self) -> int:
        """Claim what is due now and attempt each; return how many were attempted."""
        self._disabled = (-1, {})
        claimed = await self._claim(self.concurrency)
        await asyncio.gather(*(self._attempt(c, hook) for c, hook in claimed))
        return len(claimed)

    async def prune(self) -> int:
        """Delete the delivered and dead messages last tried more than KEEP_DAYS ago, a
        batch at a time (each a short write); how many went."""
        before = self.clock() - KEEP_DAYS * 86_400_000
        gone = 0
        while (n := await self.store.prune_outbox(before, PRUNE_BATCH)) > 0:
            gone += n
            if n < PRUNE_BATCH or self._stopping:
                break
            await asyncio.sleep(0)  # other writers take their turn between batches
        return gone

    async def _prune_when_due(self) -> None:
        if time.monotonic() - self._pruned < PRUNE_EVERY_S:
            return
        self._pruned = time.monotonic()
        try:
            if gone := await self.prune():
                log.info("webhook delivery: deleted %d messages past %d days", gone, KEEP_DAYS)
        except Exception as err:  # the store is down, say: at the next prune
            log.warning("webhook delivery: cannot delete old messages: %s", err)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            await self._prune_when_due()
            free = self.concurrency - len(self._inflight)
            if self._inflight and free < max(1, self.concurrency // 4):
                # Claims in batches, not one per finished attempt: a round trip each.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_s)
                continue
            try:
                for c, hook in await self._claim(free):
                    task = asyncio.create_task(self._attempt(c, hook))
                    self._inflight.add(task)
                    task.add_done_callback(self._done)
            except Exception as err:  # the store is down, say: try again at the next poll
                log.warning("webhook delivery: cannot claim messages: %s", err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.idle_s)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()  # room for another claim

    async def _attempt(self, claimed: Claimed, hook: CompiledWebhook) -> None:
        try:
            await self._attempt_once(claimed, hook)
        finally:
            self._busy[hook.target] -= 1
            if self._busy[hook.target] <= 0:
                del self._busy[hook.target]

    async def _attempt_once(self, claimed: Claimed, hook: CompiledWebhook) -> None:
        m = claimed.message
        message: dict[str, Any] = {
            **m.payload, "id": m.id, "event": m.event, "at": m.at, "site": m.site
        }  # fmt: skip
        kind = None
        try:
            body = bodies.render(hook, message)
        except WebhookBodyInvalid as err:
            # No JSON can be made of this message: trying again would make none either.
            attempt = Attempt("dead", self.clock(), None, f"body: {err}"[:_ERROR_CHARS])
        else:
            if body:
                code, error = await self._post(claimed, hook, body)
                attempt = outcome(claimed, code, error, self.clock(), self.rng)
            else:  # the template says this message is not for this webhook
                attempt = Attempt("delivered", self.clock(), None, "nothing to send")
                kind = "skipped"
        if attempt.code == 410:
            kind = "disabled"
        if self.metrics is not None:
            kind = kind or ("failed" if attempt.status == "pending" else attempt.status)
            self.metrics.deliveries[(m.site, m.webhook, kind)] += 1
        if attempt.status == "dead" or kind == "disabled":
            log.warning(
                "webhook %s: message %s is %s (%s)", m.target, m.id, kind or "dead", attempt.error
            )
        try:
            await self.store.settle_message(claimed, attempt, hook.url)
        except Exception as err:  # its lease expires, and it is tried again
            log.warning("webhook %s: cannot record an attempt of %s: %s", m.target, m.id, err)
        if kind == "disabled":
            self._disabled = (-1, {})  # read again, now that it is recorded, before a claim

    async def _post(
        self, claimed: Claimed, hook: CompiledWebhook, body: bytes
    ) -> tuple[int | None, str | None]:
        """The receiver's status, or what went wrong."""
        m = claimed.message
        headers = {
            "content-type": "application/json",
            **dict(hook.headers),
            "user-agent": "sitecue-webhooks",
            HEADER: sign(hook.secret, body, self.clock() // 1000),
            "Sitecue-Delivery": m.id,
            "Idempotency-Key": m.id,
            "Sitecue-Event": m.event,
        }
        try:
            # One deadline for the whole exchange (httpx's timeout is per phase): the
            # lease outlasts it, so no other node takes the message while it runs.
            async with asyncio.timeout(hook.timeout):
                request = self.client.build_request("POST", hook.url, content=body, headers=headers)
                response = await self.client.send(request, stream=True)
                await response.aclose()  # the status is all we need; the body is not read
            return response.status_code, None
        except TimeoutError:
            return None, f"timed out after {hook.timeout:g} s"
        except httpx.HTTPError as err:
            return None, f"{type(err).__name__}: {err}"[:_ERROR_CHARS]
        except Exception as err:
            # Whatever else fails (a header or URL the check let through): the attempt is
            # settled, a failure like any other, never left to its lease and claimed again
            # forever.
            log.warning("webhook %s: the request for %s failed: %r", hook.target, m.id, err)
            return None, f"{type(err).__name__}: {err}"[:_ERROR_CHARS]
