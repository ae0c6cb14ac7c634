"""Unit tests of :mod:`translators.externalnames`: ExternalName targets (issue 22)."""

from __future__ import annotations

from typing import Any

import pytest

from contract.facts import Facts, HostPolicy
from contract.resources import Obj
from contract.translator import Context, Warn
from tests.unit.fakes import FakeLookup, NoLookup
from translators import externalnames


def context(lookup: Any = None, **values: Any) -> Context:
    return Context("vc", "vcluster-vc", lookup if lookup is not None else FakeLookup(),
                   facts=Facts(**values))


def external(target: str, kind: str = "ExternalName") -> Obj:
    return {"metadata": {"name": "ext", "namespace": "team"},
            "spec": {"type": kind, "externalName": target}}


@pytest.mark.parametrize("target", [
    "victim-x-team-x-vc2.vcluster-vc2.svc.cluster.local",
    "victim-x-team-x-vc2.vcluster-vc2.svc.cluster.local.",
    "victim-x-team-x-vc2.vcluster-vc2",
    "web-0.db.vcluster-vc2",
    "10-244-0-7.vcluster-vc2.pod",
    "kubernetes", "kubernetes.default", "kubernetes.default.svc",
    "KUBERNETES.Default.SVC.Cluster.Local",
    "kube-dns.kube-system.svc.corp.example.",
    "cluster.local", "localhost", "localhost.",
    "10.96.0.1", "127.0.0.1", "169.254.169.254", "fd00::1",
    "db.example.com",
])
def test_targets_that_could_resolve_inside_the_host_cluster_are_refused(target: str) -> None:
    (action,) = externalnames.refusal(external(target), context(NoLookup()))
    assert isinstance(action, Warn)
    assert action.reason == "ExternalNameRefused"
    assert repr(target) in action.message


@pytest.mark.parametrize("target", [
    "db.example.com.", "status.example.com.", "my-db.eu-west-1.rds.example.com",
    "203.0.113.7", "api.svc.example.com.",
])
def test_external_targets_are_synced(target: str) -> None:
    assert externalnames.refusal(external(target), context(NoLookup())) == []


def test_only_external_name_services_are_checked() -> None:
    assert externalnames.refusal(external("kubernetes", "ClusterIP"), context()) == []


@pytest.mark.parametrize(("pattern", "target"), [
    ("*.db.example.com", "orders.db.example.com"),
    ("*.db.example.com.", "orders.db.example.com."),
    ("shared.platform.svc.cluster.local", "Shared.Platform.svc.cluster.local"),
])
def test_a_pattern_allows_a_target_anyway(pattern: str, target: str) -> None:
    allowed = HostPolicy(external_names=(pattern,))
    ctx = context(NoLookup(), **{"policy": allowed})
    assert externalnames.refusal(external(target), ctx) == []
    assert externalnames.refusal(external("kubernetes.default"), ctx) != []
