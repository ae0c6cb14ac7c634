"""PodDisruptionBudgets end to end: a tenant's budget reaches the host, confined to its pods.

The host API server validates and stores the copy (``policy/v1``), the syncer keeps
its spec in step and removes it with the virtual budget.
"""

from __future__ import annotations

import pytest

from contract import naming
from contract import resources as r
from tests.cluster.conftest import VC, Stack, sync_config
from tests.support import wait_until
from translators.poddisruptionbudgets import PODDISRUPTIONBUDGETS

NS = "budgets"


@pytest.fixture
async def budgets(stack: Stack) -> Stack:
    await stack.virtual.create(r.NAMESPACES, {"metadata": {"name": NS}})
    return stack


@pytest.mark.parametrize("config", [sync_config({"podDisruptionBudgets": {"enabled": True}})])
async def test_a_budget_is_synced_confined_updated_and_removed(budgets: Stack) -> None:
    budgets.syncer().start()
    await budgets.virtual.create(PODDISRUPTIONBUDGETS, {"metadata": {"name": "web"}, "spec": {
        "minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}, NS)
    host = await wait_until(lambda: budgets.host_get(PODDISRUPTIONBUDGETS, "web", NS),
                            "the host PodDisruptionBudget")
    assert host is not None
    owned = {naming.LABEL_MANAGED_BY: VC, naming.LABEL_NAMESPACE: NS}
    assert host["spec"]["selector"] == {"matchLabels": {"app": "web", **owned}}
    assert host["spec"]["minAvailable"] == 1

    await budgets.virtual.patch(PODDISRUPTIONBUDGETS, "web", {"spec": {"minAvailable": 2}}, NS)

    async def updated() -> bool:
        found = await budgets.host_get(PODDISRUPTIONBUDGETS, "web", NS)
        return found is not None and found["spec"].get("minAvailable") == 2

    await wait_until(updated, "minAvailable 2 on the host PodDisruptionBudget")
    await budgets.virtual.delete(PODDISRUPTIONBUDGETS, "web", NS)

    async def gone() -> bool:
        return await budgets.host_get(PODDISRUPTIONBUDGETS, "web", NS) is None

    await wait_until(gone, "the host PodDisruptionBudget deleted with the virtual one")
