"""The engine's decision for one key, and the one dispatch of its actions.

Why a module of its own: ``vcsync translate`` and the chaos suite's
convergence judge must decide exactly as the controllers do, without the
engine's weight (informers, HTTP clients). :func:`plan` picks the translator
case from what exists; :func:`ensure_actions` is what a referrer's
``EnsureSynced`` makes the referenced kind do; :func:`execute` hands the
actions, in order, to an :class:`Executor`: the controller's writes
(``syncer.controller``) or a recorder. Imports only the contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from contract import naming
from contract.resources import Direction, Obj, Side
from contract.translator import (
    Action,
    Context,
    Create,
    Delete,
    EnsureSynced,
    IssueTokens,
    Patch,
    Requeue,
    Translator,
    Warn,
)


def plan(t: Translator, ctx: Context, virtual: Obj | None, host: Obj | None) -> list[Action]:
    """The actions one reconcile takes for the pair (``virtual``, ``host``) of one key.

    Pure (the heart of the contract): it picks the translator case from what
    exists. A module function so that checks outside the engine (the chaos
    suite's convergence oracle) run exactly the engine's decision.
    """
    if any(o is not None and naming.is_controlled_elsewhere(o) for o in (virtual, host)):
        return []
    if t.direction is Direction.FROM_HOST:
        if host is not None and t.wants(host, ctx):
            return t.to_virtual(host, ctx) if virtual is None else t.sync(virtual, host, ctx)
        return t.to_host(virtual, ctx) if virtual is not None else []
    wanted = virtual is not None and t.wants(virtual, ctx)
    if virtual is not None and wanted:
        if host is None:
            return t.to_host(virtual, ctx)
        if t.recreate_on_new_uid and _uid_changed(virtual, host):
            meta = host["metadata"]
            return [Delete(Side.HOST, t.host, meta["name"], meta.get("namespace"),
                           meta.get("uid"))]
        return t.sync(virtual, host, ctx)
    return t.to_virtual(host, ctx) if host is not None else []


def ensure_actions(
    t: Translator, ctx: Context, virtual: Obj | None, host: Obj | None
) -> list[Action]:
    """What :meth:`Controller.ensure` writes: the missing target-side copy, filter ignored."""
    if t.direction is Direction.FROM_HOST:
        return t.to_virtual(host, ctx) if host is not None and virtual is None else []
    return t.to_host(virtual, ctx) if virtual is not None and host is None else []


def _uid_changed(virtual: Obj, host: Obj) -> bool:
    identity = naming.identity_of(host)
    return identity is not None and identity.uid != virtual["metadata"].get("uid")


class Executor(Protocol):
    """Where one reconcile's actions go, in order (:func:`execute`).

    The engine writes them (:class:`_Writes`); ``vcsync translate`` and the chaos
    suite's convergence judge record them. One dispatch for all three, so an
    offline answer is the engine's decision, not a re-telling of it.
    """

    async def create(self, action: Create) -> None: ...

    async def patch(self, action: Patch) -> None: ...

    async def delete(self, action: Delete) -> None: ...

    async def ensure(self, kind: type[Translator], key: str) -> None: ...

    async def issue_tokens(self, action: IssueTokens) -> float | None:
        """Returns when to look again (tokens fall due), or None."""
        ...

    async def warn(self, reason: str, message: str) -> None: ...

    async def requeue(self, after: float) -> None: ...


async def execute(actions: Iterable[Action], executor: Executor) -> float | None:
    """Run ``actions`` in order through ``executor`` (a failure stops the rest: an
    ``EnsureSynced`` before a ``Create`` holds it back); the soonest requeue asked for."""
    delays: list[float] = []
    for action in actions:
        match action:
            case Create():
                await executor.create(action)
            case Patch():
                await executor.patch(action)
            case Delete():
                await executor.delete(action)
            case EnsureSynced(kind=kind, key=key):
                await executor.ensure(kind, key)
            case IssueTokens():
                delay = await executor.issue_tokens(action)
                delays += [] if delay is None else [delay]
            case Warn(reason=reason, message=message):
                await executor.warn(reason, message)
            case Requeue(after=after):
                await executor.requeue(after)
                delays.append(after)
    return min(delays, default=None)


def record(actions: Iterable[Action], recorder: Executor) -> float | None:
    """:func:`execute` for a recorder, from synchronous code (offline tools, the judge).

    A recorder's methods never wait for anything, so the coroutine finishes on
    its first step; one that would suspend is a bug, not something to wait for.
    """
    coroutine = execute(actions, recorder)
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: float | None = done.value
        return result
    coroutine.close()
    raise RuntimeError(f"{type(recorder).__name__} suspended: a recorder must not wait")
