"""The one dispatch of a reconcile's actions (syncer.planning), with recorders."""

from __future__ import annotations

import asyncio

import pytest

from contract import resources
from contract.translator import (
    Create,
    Delete,
    EnsureSynced,
    IssueTokens,
    Patch,
    Requeue,
    Side,
    Translator,
    Warn,
)
from syncer.planning import record
from translators.configmaps import ConfigMapTranslator


class Log:
    """A recorder that keeps every call, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def create(self, action: Create) -> None:
        self.calls.append(f"create {action.obj['metadata']['name']}")

    async def patch(self, action: Patch) -> None:
        self.calls.append(f"patch {action.name}")

    async def delete(self, action: Delete) -> None:
        self.calls.append(f"delete {action.name}")

    async def ensure(self, kind: type[Translator], key: str) -> None:
        self.calls.append(f"ensure {kind.kind} {key}")

    async def issue_tokens(self, action: IssueTokens) -> float | None:
        self.calls.append("tokens")
        return 30.0

    async def warn(self, reason: str, message: str) -> None:
        self.calls.append(f"warn {reason}")

    async def requeue(self, after: float) -> None:
        self.calls.append(f"requeue {after:g}")


class Waits(Log):
    async def create(self, action: Create) -> None:
        await asyncio.sleep(0)


def test_every_action_reaches_the_executor_in_order_and_the_soonest_requeue_wins() -> None:
    pod = {"metadata": {"name": "p"}}
    log = Log()
    soonest = record([
        EnsureSynced(ConfigMapTranslator, "team/cfg"),
        Create(Side.HOST, resources.PODS, pod),
        Patch(Side.VIRTUAL, resources.PODS, "p", "team", {}),
        Warn("Reason", "text"),
        Requeue(60.0),
        IssueTokens({}, "team", "default", "p", "u", (), {}),
        Delete(Side.HOST, resources.PODS, "q", "ns", None),
    ], log)
    assert log.calls == ["ensure configMaps team/cfg", "create p", "patch p", "warn Reason",
                         "requeue 60", "tokens", "delete q"]
    assert soonest == 30.0
    assert record([], Log()) is None


def test_a_recorder_that_waits_is_refused() -> None:
    with pytest.raises(RuntimeError, match="Waits suspended"):
        record([Create(Side.HOST, resources.PODS, {"metadata": {"name": "p"}})], Waits())
