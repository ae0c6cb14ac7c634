"""Leader election on a coordination.k8s.io/v1 Lease, with client-go ``leaderelection`` semantics.

Why: two syncer replicas writing to the same host namespace would fight over
every object. Only the replica holding the Lease writes; the others stand by
and take over when it stops renewing (crash) or hands it back (shutdown).

Why expiry is judged on our own clock: the holder writes ``renewTime`` with
*its* wall clock, which may be off from ours by any amount. Like client-go, a
candidate only trusts *when it saw the record change* (``_observed_at``, from
the monotonic ``clock``): someone else's Lease has expired once its spec has
stayed unchanged for ``leaseDurationSeconds`` of our own time. The remote
timestamps are written for people and tools, never read for a decision.

Why every write is a PUT carrying the observed ``resourceVersion`` (or a
create when the Lease is absent): of two candidates racing for one expired
record exactly one write succeeds; the other gets 409 Conflict (or
AlreadyExists) and simply stays a candidate.

Invariant: at most one identity believes itself leader (``is_leader``),
provided clocks advance at the same rate, ``renew_deadline < lease_duration``,
identities are unique and only electors write the Lease. Why: let ``S`` be the
moment the holder began its last successful attempt. It believes itself
leader only until ``S + renew_deadline`` (:attr:`LeaderElector.is_leader`
checks the deadline itself, so even a late event loop cannot stretch it). No
candidate can see that write before ``S``, so its ``_observed_at >= S``
and it takes over no earlier than ``S + lease_duration``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from contract.resources import LEASES
from syncer.kube.client import KubeClient, Obj
from syncer.kube.errors import KubeError, NotFound

_log = logging.getLogger(__name__)

JITTER_FACTOR = 1.2
"""client-go's ``JitterFactor``: a candidate waits ``retry_period * (1 + U[0, 1.2))``
between tries, so candidates started together do not hit the API server in lockstep."""

StartedCallback = Callable[[], Awaitable[None] | None]
"""Called on winning the Lease; an awaitable it returns runs as a task until leadership ends."""
StoppedCallback = Callable[[], None]
"""Called the moment leadership ends, after ``is_leader`` has turned False."""
ChangeCallback = Callable[[bool], None]
"""Called with the new state on every change (feeds ``leader_election_master_status``)."""


class LeaderElector:
    """Campaigns for one Lease as ``identity``; see the module docstring for the invariant.

    Usage: run :meth:`run` in a task; on shutdown cancel that task, await it,
    then ``await release()``. ``identity`` must be unique per process (a
    candidate treats a Lease naming its own identity as its own).
    """

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: ChangeCallback | None = None,
    ) -> None:
        _check_settings(identity, lease_duration, renew_deadline, retry_period)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.leader_event = asyncio.Event()
        """Set while leading: ``await leader_event.wait()`` to block until elected."""
        self._client = client
        self._clock = clock
        self._on_change = on_change
        self._leading = False
        self._running = False
        self._renewed_at = -math.inf  # clock() when the last successful attempt began
        self._observed: Obj | None = None  # the Lease as last seen (None: absent or not yet read)
        self._observed_at = -math.inf  # clock() when its spec was first seen as it is now
        self._work: asyncio.Future[None] | None = None

    # -- public surface -------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """True while leading; turns False on its own once the renew deadline has passed."""
        return self._leading and self._clock() < self._renewed_at + self.renew_deadline

    @property
    def observed_holder(self) -> str | None:
        """The holder named by the Lease when last read; None if absent, released or unread."""
        holder = _spec(self._observed).get("holderIdentity")
        return str(holder) if holder else None

    async def run(
        self, on_started_leading: StartedCallback, on_stopped_leading: StoppedCallback
    ) -> None:
        """Campaign, lead until the Lease is lost, campaign again; until cancelled.

        API errors never end it: they only mean "try again after retry_period".
        ``on_stopped_leading`` also runs when ``run`` is cancelled while leading.
        """
        if self._running:
            raise RuntimeError(f"run() of {self.identity} is already running")
        self._running = True
        try:
            while True:
                await self._campaign()
                try:
                    self._start_leading(on_started_leading)
                    await self._keep_renewing()
                finally:
                    self._stop_leading(on_stopped_leading)
        finally:
            self._running = False

    async def release(self) -> bool:
        """Hand the Lease back so a standby takes over at once (client-go ReleaseOnCancel).

        Call after :meth:`run` was cancelled and has returned. Only a Lease that
        still names us is touched, and the PUT carries its resourceVersion, so a
        release never clobbers a newer holder. True if the Lease was released;
        on any failure it is simply left to expire.
        """
        if self._running:
            raise RuntimeError("cancel run() and await it before release()")
        try:
            async with asyncio.timeout(self.renew_deadline):
                current = await self._read()
                if current is None or self.observed_holder != self.identity:
                    return False
                released = {**current, "spec": _released_spec(_spec(current), _now())}
                self._observe(await self._request("PUT", released))
        except (KubeError, TimeoutError) as exc:
            _log.warning("could not release lease %s/%s: %s", self.namespace, self.name, exc)
            return False
        _log.info("released lease %s/%s", self.namespace, self.name)
        return True

    # -- candidate ------------------------------------------------------

    async def _campaign(self) -> None:
        """Try at once, then every jittered retry_period, until the Lease is ours."""
        while True:
            if await self._attempt_bounded():
                return
            await asyncio.sleep(_jittered(self.retry_period))

    async def _attempt_bounded(self) -> bool:
        """One attempt that cannot hang: a write arriving later than this is useless."""
        try:
            async with asyncio.timeout(self.renew_deadline):
                return await self._try_acquire_or_renew()
        except TimeoutError:
            _log.debug("lease %s/%s: attempt timed out", self.namespace, self.name)
            return False

    # -- leader ---------------------------------------------------------

    def _time_left(self) -> float:
        return self._renewed_at + self.renew_deadline - self._clock()

    async def _keep_renewing(self) -> None:
        """Renew every retry_period; return as soon as leadership is lost.

        Lost means: the Lease names another holder, or no renewal succeeded
        within renew_deadline of the start of the last successful one (the timeout
        fires exactly then, however long a request hangs).
        """
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._time_left()) as deadline:
                while True:
                    await asyncio.sleep(self.retry_period)
                    if await self._try_acquire_or_renew():
                        deadline.reschedule(loop.time() + self._time_left())
                    elif self.observed_holder != self.identity:
                        _log.warning(
                            "lease %s/%s taken by %s",
                            self.namespace,
                            self.name,
                            self.observed_holder,
                        )
                        return
        except TimeoutError:
            _log.warning(
                "lease %s/%s not renewed within %.1fs",
                self.namespace,
                self.name,
                self.renew_deadline,
            )

    def _start_leading(self, on_started: StartedCallback) -> None:
        self._set_leading(True)
        _log.info("leading lease %s/%s as %s", self.namespace, self.name, self.identity)
        work = on_started()
        if work is not None:
            self._work = asyncio.ensure_future(work)
            self._work.add_done_callback(_log_failure)

    def _stop_leading(self, on_stopped: StoppedCallback) -> None:
        """Flip to follower before anything else, then tell the syncer to stop writing."""
        self._set_leading(False)
        if self._work is not None:
            self._work.cancel()
            self._work = None
        on_stopped()

    def _set_leading(self, leading: bool) -> None:
        self._leading = leading
        if leading:
            self.leader_event.set()
        else:
            self.leader_event.clear()
        if self._on_change is not None:
            self._on_change(leading)

    # -- one round trip ---------------------------------------------------

    async def _try_acquire_or_renew(self) -> bool:
        """Read the Lease and write ourselves as holder if we may. True if the write succeeded."""
        began = self._clock()
        try:
            current = await self._read()
            if current is not None and not self._may_take(current):
                return False
            spec = _next_spec(_spec(current), self.identity, self._duration_seconds(), _now())
            written = await self._write(current, spec)
        except KubeError as exc:
            _log.debug("lease %s/%s: %s", self.namespace, self.name, exc)
            return False
        self._observe(written)
        self._renewed_at = began
        return True

    def _may_take(self, lease: Obj) -> bool:
        """Free, already ours, or unchanged for its whole duration as timed by OUR clock."""
        spec = _spec(lease)
        if spec.get("holderIdentity") in (None, "", self.identity):
            return True
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        return self._observed_at + duration < self._clock()

    def _observe(self, lease: Obj | None) -> None:
        """Remember the Lease; restart the expiry clock only when its spec changed."""
        if _spec(lease) != _spec(self._observed):
            self._observed_at = self._clock()
        self._observed = lease

    def _duration_seconds(self) -> int:
        """Whole seconds, rounded up: promising others a longer lease is the safe side."""
        return max(1, math.ceil(self.lease_duration))

    async def _read(self) -> Obj | None:
        try:
            lease = await self._request("GET")
        except NotFound:
            lease = None
        self._observe(lease)
        return lease

    async def _write(self, current: Obj | None, spec: Obj) -> Obj:
        if current is not None:
            return await self._request("PUT", {**current, "spec": spec})
        lease = {
            "apiVersion": LEASES.api_version,
            "kind": LEASES.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec,
        }
        return await self._client.request(
            "POST", LEASES.path(self.namespace), body=lease, retry=False
        )

    async def _request(self, method: str, body: Obj | None = None) -> Obj:
        """No transport retries: the elector's own loop is the retry, paced by retry_period."""
        path = LEASES.path(self.namespace, self.name)
        return await self._client.request(method, path, body=body, retry=False)


def _check_settings(
    identity: str, lease_duration: float, renew_deadline: float, retry_period: float
) -> None:
    """client-go's rules: the holder gives up before anyone may take over, after a few tries."""
    if not identity:
        raise ValueError("identity must not be empty: an empty holder means a released Lease")
    if not lease_duration > renew_deadline > JITTER_FACTOR * retry_period > 0:
        raise ValueError(
            "need lease_duration > renew_deadline > 1.2 * retry_period > 0, got "
            f"{lease_duration}, {renew_deadline}, {retry_period}"
        )


def _spec(lease: Obj | None) -> Obj:
    spec: Obj = (lease or {}).get("spec") or {}
    return spec


def _next_spec(old: Obj, identity: str, duration: int, now: str) -> Obj:
    """The spec we write: a renewal keeps acquireTime and leaseTransitions, a takeover
    of an existing record counts one more transition (client-go)."""
    renewal = old.get("holderIdentity") == identity
    transitions = int(old.get("leaseTransitions") or 0)
    return {
        **old,
        "holderIdentity": identity,
        "leaseDurationSeconds": duration,
        "acquireTime": old.get("acquireTime", now) if renewal else now,
        "renewTime": now,
        "leaseTransitions": transitions if renewal or not old else transitions + 1,
    }


def _released_spec(old: Obj, now: str) -> Obj:
    """No holder and a 1 s duration, so even an older client takes over at once."""
    return {
        **old,
        "holderIdentity": "",
        "leaseDurationSeconds": 1,
        "acquireTime": now,
        "renewTime": now,
    }


def _now() -> str:
    return _micro_time(datetime.now(UTC))


def _micro_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds: the wire form of ``metav1.MicroTime``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _jittered(period: float) -> float:
    return period * (1.0 + JITTER_FACTOR * random.random())


def _log_failure(work: asyncio.Future[None]) -> None:
    if not work.cancelled() and work.exception() is not None:
        _log.error("on_started_leading failed", exc_info=work.exception())
