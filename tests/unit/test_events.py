"""Unit tests of the fromHost Event translator (acceptance scenario 29).

The host caches are a :class:`FakeLookup` holding the host pod ``web-abc`` of
virtual namespace ``demo`` (host name ``web-abc-x-demo-x-vc``) as the pod
translator writes it: managed-by label and identity annotations. Events are
shaped like those the scheduler and kubelet write. Every call runs inside
``unchanged`` so a translator that mutates a cached object fails.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from contract import naming, resources
from contract.resources import Obj
from contract.translator import Context, Create, Patch, Side
from syncer.controller import Controller
from tests.unit.fakes import FakeLookup, unchanged
from translators.events import INVOLVED_RESOURCES, EventTranslator, virtual_event_name

HOST_NS = "vcluster-vc"
POD_HOST_NAME = "web-abc-x-demo-x-vc"
HOST_EVENT_NAME = f"{POD_HOST_NAME}.17c8f5e0a1b2c3d4"
VIRTUAL_EVENT_NAME = f"web-abc.{hashlib.sha256(HOST_EVENT_NAME.encode()).hexdigest()[:16]}"




def host_obj(
    kind: str, host_name: str, name: str, namespace: str = "demo", **extra: Any
) -> Obj:
    """A host object as the syncer writes it: ownership label and identity annotations."""
    identity = naming.VirtualIdentity(name, namespace, f"virtual-uid-{name}", kind)
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {
            "name": host_name,
            "namespace": HOST_NS,
            "uid": f"host-uid-{name}",
            "labels": naming.host_labels({"app": "web"}, "vc", namespace),
            "annotations": naming.host_annotations({}, identity),
            **extra,
        },
    }


def host_pod() -> Obj:
    return host_obj("Pod", POD_HOST_NAME, "web-abc")


def context(*objs: tuple[Any, Obj]) -> Context:
    lookup = FakeLookup()
    for resource, obj in objs:
        lookup.add(Side.HOST, resource, obj)
    return Context(vcluster="vc", host_namespace=HOST_NS, lookup=lookup)


def pod_context() -> Context:
    return context((resources.PODS, host_pod()))


def host_event(**fields: Any) -> Obj:
    """The scheduler's event about the host pod, as the host API server stores it."""
    event: Obj = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": HOST_EVENT_NAME,
            "namespace": HOST_NS,
            "uid": "host-event-uid",
            "resourceVersion": "4711",
            "creationTimestamp": "2024-05-01T10:00:02Z",
        },
        "involvedObject": {
            "kind": "Pod",
            "apiVersion": "v1",
            "name": POD_HOST_NAME,
            "namespace": HOST_NS,
            "uid": "host-uid-web-abc",
            "resourceVersion": "812",
        },
        "reason": "Scheduled",
        "message": f"Successfully assigned {HOST_NS}/{POD_HOST_NAME} to kwok-node-0",
        "source": {"component": "default-scheduler"},
        "firstTimestamp": "2024-05-01T10:00:02Z",
        "lastTimestamp": "2024-05-01T10:00:02Z",
        "count": 1,
        "type": "Normal",
        "eventTime": None,
        "reportingComponent": "default-scheduler",
        "reportingInstance": "default-scheduler-host-cp",
    }
    event.update(fields)
    return event


def kubelet_event() -> Obj:
    """A repeated kubelet event with a fieldPath and a series."""
    involved = {**host_event()["involvedObject"], "fieldPath": "spec.containers{web}"}
    return host_event(
        involvedObject=involved,
        reason="BackOff",
        type="Warning",
        message=f"Back-off restarting failed container web in pod {POD_HOST_NAME}_{HOST_NS}",
        source={"component": "kubelet", "host": "kwok-node-0"},
        reportingComponent="kubelet",
        reportingInstance="kwok-node-0",
        count=3,
        series={"count": 3, "lastObservedTime": "2024-05-01T10:05:00.000000Z"},
        action="Restarting",
    )


def created(actions: list[Any]) -> Obj:
    assert len(actions) == 1
    action = actions[0]
    assert isinstance(action, Create)
    assert action.side is Side.VIRTUAL
    assert action.resource == resources.EVENTS
    return action.obj


def stored(obj: Obj) -> Obj:
    """``obj`` as the virtual API server returns it after the create."""
    out = copy.deepcopy(obj)
    out["metadata"].update({"uid": "virtual-event-uid", "resourceVersion": "33"})
    return out


# --- which host events are ours ---------------------------------------------------------------


def test_declares_the_host_caches_it_reads_and_watches_all_host_events() -> None:
    t = EventTranslator()
    assert set(t.reads()) == {(Side.HOST, r) for r in INVOLVED_RESOURCES.values()}
    assert {r.kind for r in INVOLVED_RESOURCES.values()} == {
        "Pod", "Service", "ConfigMap", "Secret", "PersistentVolumeClaim", "Endpoints",
    }
    assert t.host_label_selector(pod_context()) == ""


def test_event_about_a_synced_pod_maps_to_the_virtual_namespace() -> None:
    t, event, ctx = EventTranslator(), host_event(), pod_context()
    with unchanged(event, host_pod()):
        assert t.virtual_key(event, ctx) == f"demo/{VIRTUAL_EVENT_NAME}"
        assert t.wants(event, ctx)


@pytest.mark.parametrize(
    ("case", "ctx"),
    [
        ("not in any cache", context()),
        ("no managed-by label", context((resources.PODS, {
            **host_pod(),
            "metadata": {**host_pod()["metadata"], "labels": {"app": "web"}},
        }))),
        ("another virtual cluster", context((resources.PODS, {
            **host_pod(),
            "metadata": {**host_pod()["metadata"], "labels": naming.host_labels({}, "other", "d")},
        }))),
        ("no identity annotations", context((resources.PODS, {
            **host_pod(),
            "metadata": {**host_pod()["metadata"], "annotations": {}},
        }))),
        ("identity of another kind", context(
            (resources.PODS, host_obj("Secret", POD_HOST_NAME, "web-abc")),
        )),
    ],
)
def test_event_about_an_object_that_is_not_ours_is_ignored(case: str, ctx: Context) -> None:
    t, event = EventTranslator(), host_event()
    with unchanged(event):
        assert t.virtual_key(event, ctx) is None, case
        assert not t.wants(event, ctx), case
        assert t.to_virtual(event, ctx) == [], case


def test_event_about_an_earlier_host_object_of_the_same_name_is_ignored() -> None:
    involved = {**host_event()["involvedObject"], "uid": "host-uid-of-a-deleted-pod"}
    assert EventTranslator().virtual_key(host_event(involvedObject=involved), pod_context()) is None


def test_event_without_involved_uid_is_matched_by_name() -> None:
    involved = {k: v for k, v in host_event()["involvedObject"].items() if k != "uid"}
    key = EventTranslator().virtual_key(host_event(involvedObject=involved), pod_context())
    assert key == f"demo/{VIRTUAL_EVENT_NAME}"


@pytest.mark.parametrize(
    "involved",
    [
        {"kind": "Node", "apiVersion": "v1", "name": "kwok-node-0", "uid": "n1"},
        {"kind": "Pod", "apiVersion": "v1", "name": POD_HOST_NAME, "namespace": "kube-system"},
        {"kind": "Deployment", "apiVersion": "apps/v1", "name": POD_HOST_NAME,
         "namespace": HOST_NS},
        {},
    ],
)
def test_event_about_other_namespaces_or_kinds_is_ignored(involved: Obj) -> None:
    assert EventTranslator().virtual_key(host_event(involvedObject=involved), pod_context()) is None


def test_token_secret_event_is_not_a_virtual_secret_event() -> None:
    """A pod's token Secret carries the *pod's* identity: no virtual Secret to point at."""
    secret = host_obj("Pod", "web-abc-token-x-demo-x-vc", "web-abc")
    involved = {"kind": "Secret", "name": "web-abc-token-x-demo-x-vc", "namespace": HOST_NS}
    ctx = context((resources.SECRETS, secret))
    assert EventTranslator().virtual_key(host_event(involvedObject=involved), ctx) is None


# --- the virtual copy -----------------------------------------------------------------------------


def test_to_virtual_creates_the_rewritten_event() -> None:
    t, event, ctx = EventTranslator(), host_event(), pod_context()
    with unchanged(event, host_pod()):
        obj = created(t.to_virtual(event, ctx))
    assert obj == {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": VIRTUAL_EVENT_NAME, "namespace": "demo"},
        "involvedObject": {
            "kind": "Pod",
            "apiVersion": "v1",
            "name": "web-abc",
            "namespace": "demo",
            "uid": "virtual-uid-web-abc",
        },
        "reason": "Scheduled",
        "message": "Successfully assigned demo/web-abc to kwok-node-0",
        "source": {"component": "default-scheduler"},
        "firstTimestamp": "2024-05-01T10:00:02Z",
        "lastTimestamp": "2024-05-01T10:00:02Z",
        "count": 1,
        "type": "Normal",
        "reportingComponent": "default-scheduler",
        "reportingInstance": "default-scheduler-host-cp",
    }


def test_kubelet_event_keeps_field_path_series_action_and_node_names() -> None:
    obj = created(EventTranslator().to_virtual(kubelet_event(), pod_context()))
    assert obj["involvedObject"]["fieldPath"] == "spec.containers{web}"
    assert "resourceVersion" not in obj["involvedObject"]
    assert obj["message"] == "Back-off restarting failed container web in pod web-abc_demo"
    assert obj["source"] == {"component": "kubelet", "host": "kwok-node-0"}
    assert obj["reportingInstance"] == "kwok-node-0"
    assert obj["series"] == kubelet_event()["series"]
    assert (obj["action"], obj["count"], obj["type"]) == ("Restarting", 3, "Warning")


def test_message_is_rewritten_in_one_pass() -> None:
    """A virtual name containing the host namespace is not rewritten a second time."""
    pod = host_obj("Pod", "vcluster-vc-app-x-demo-x-vc", "vcluster-vc-app")
    involved = {"kind": "Pod", "name": "vcluster-vc-app-x-demo-x-vc", "namespace": HOST_NS}
    event = host_event(
        involvedObject=involved,
        message="Successfully assigned vcluster-vc/vcluster-vc-app-x-demo-x-vc to kwok-node-0",
    )
    obj = created(EventTranslator().to_virtual(event, context((resources.PODS, pod))))
    assert obj["message"] == "Successfully assigned demo/vcluster-vc-app to kwok-node-0"


def test_event_without_message_gets_no_message() -> None:
    event = {k: v for k, v in host_event().items() if k != "message"}
    assert "message" not in created(EventTranslator().to_virtual(event, pod_context()))


def test_related_object_of_ours_is_rewritten() -> None:
    pvc = host_obj("PersistentVolumeClaim", "data-x-demo-x-vc", "data")
    related = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "name": "data-x-demo-x-vc",
               "namespace": HOST_NS, "uid": "host-uid-data"}
    event = host_event(
        reason="FailedScheduling", related=related,
        message=f'pod {POD_HOST_NAME} has unbound PersistentVolumeClaim "data-x-demo-x-vc"',
    )
    ctx = context((resources.PODS, host_pod()), (resources.PVCS, pvc))
    with unchanged(event, pvc):
        obj = created(EventTranslator().to_virtual(event, ctx))
    assert obj["related"] == {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "name": "data",
                              "namespace": "demo", "uid": "virtual-uid-data"}
    assert obj["message"] == 'pod web-abc has unbound PersistentVolumeClaim "data"'


def test_related_object_not_ours_is_dropped() -> None:
    related = {"kind": "Node", "apiVersion": "v1", "name": "kwok-node-0"}
    obj = created(EventTranslator().to_virtual(host_event(related=related), pod_context()))
    assert "related" not in obj


# --- names ------------------------------------------------------------------------------------


def test_virtual_event_names_are_stable_and_unique_per_host_event() -> None:
    first = virtual_event_name("web-abc", HOST_EVENT_NAME)
    assert first == VIRTUAL_EVENT_NAME == virtual_event_name("web-abc", HOST_EVENT_NAME)
    assert virtual_event_name("web-abc", f"{POD_HOST_NAME}.17c8f5e0a1b2c3d5") != first


def test_virtual_event_name_fits_253_characters_without_a_dangling_separator() -> None:
    long_name = "a" * 235 + ".b" + "c" * 16
    name = virtual_event_name(long_name, "x")
    assert len(name) <= 253
    assert name.startswith("a" * 235 + ".")
    assert ".." not in name
    assert "-." not in virtual_event_name("b" * 235 + "-" + "c" * 20, "x")


# --- sync and to_host ---------------------------------------------------------------------------


def test_sync_of_an_unchanged_event_writes_nothing() -> None:
    t, ctx = EventTranslator(), pod_context()
    for event in (host_event(), kubelet_event()):
        virtual = stored(created(t.to_virtual(event, ctx)))
        with unchanged(virtual, event):
            assert t.sync(virtual, event, ctx) == []


def test_null_timestamps_the_api_returns_are_not_a_change() -> None:
    """events.k8s.io recorders leave the core timestamps unset; the API returns them as null."""
    t, ctx = EventTranslator(), pod_context()
    event = host_event(firstTimestamp=None, lastTimestamp=None,
                       eventTime="2024-05-01T10:00:02.000000Z")
    virtual = stored(created(t.to_virtual(event, ctx)))
    virtual.update(firstTimestamp=None, lastTimestamp=None)
    with unchanged(virtual, event):
        assert t.sync(virtual, event, ctx) == []


def test_sync_follows_a_repeated_host_event() -> None:
    t, ctx = EventTranslator(), pod_context()
    virtual = stored(created(t.to_virtual(kubelet_event(), ctx)))
    again = kubelet_event()
    again.update(
        count=4,
        lastTimestamp="2024-05-01T10:07:00Z",
        series={"count": 4, "lastObservedTime": "2024-05-01T10:07:00.000000Z"},
        message=f"Back-off pulling image in pod {POD_HOST_NAME}_{HOST_NS}",
        reason="ChangedReasonIsNotFollowed",
    )
    with unchanged(virtual, again):
        actions = t.sync(virtual, again, ctx)
    assert actions == [Patch(Side.VIRTUAL, resources.EVENTS, VIRTUAL_EVENT_NAME, "demo", {
        "count": 4,
        "lastTimestamp": "2024-05-01T10:07:00Z",
        "series": {"count": 4, "lastObservedTime": "2024-05-01T10:07:00.000000Z"},
        "message": "Back-off pulling image in pod web-abc_demo",
    })]


def test_to_host_never_deletes_a_virtual_event() -> None:
    t, ctx = EventTranslator(), pod_context()
    virtual = stored(created(t.to_virtual(host_event(), ctx)))
    assert t.to_host(virtual, ctx) == []


# --- Controller.plan ----------------------------------------------------------------------------


def planner(ctx: Context) -> Controller:
    """A Controller with only what ``plan`` reads (``__init__`` needs informers)."""
    controller = Controller.__new__(Controller)
    controller.translator = EventTranslator()
    controller.ctx = ctx
    return controller


def test_plan_copies_syncs_and_keeps_events() -> None:
    c = planner(pod_context())
    event = host_event()
    virtual = stored(created(c.plan(None, event)))
    assert c.plan(virtual, event) == []
    assert c.plan(virtual, None) == []
    assert planner(context()).plan(virtual, event) == []
    assert planner(context()).plan(None, event) == []
