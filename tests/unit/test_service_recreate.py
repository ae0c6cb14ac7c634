"""A virtual Service re-created with the host's ClusterIP survives an interrupted re-create.

Found by the chaos suite (``tests/chaos/test_kills.py``): the syncer deletes
the virtual Service and creates it again with the host's ClusterIP (ClusterIPs
are immutable). Killed between the two requests, or with the create failing
(a 504 from a busy virtual API server), it came back to a host Service
without a virtual one, took it for an orphan and deleted it: the tenant's
Service was lost on both sides. Now the host Service carries the object to
create while the re-create is under way, and a syncer that finds the host
copy alone with that record creates the virtual Service from it.
"""

from __future__ import annotations

import copy
import json

from contract import naming, resources
from contract.resources import Obj
from contract.translator import Create, Delete, Patch, Side
from syncer.planning import plan
from tests.unit.test_services import (
    HOST_IP,
    HOST_NAME,
    HOST_NS,
    context,
    host_stored,
    node_port_service,
    sync,
    to_host,
)
from translators.services import RECREATING, ServiceTranslator


def interrupted() -> tuple[Obj, Obj]:
    """(the host Service after the marker patch, the virtual Service it stands for)."""
    virtual = node_port_service()
    host = host_stored(to_host(virtual))
    (mark, _, create) = sync(virtual, host)
    assert isinstance(mark, Patch)
    assert isinstance(create, Create)
    marked = copy.deepcopy(host)
    marked["metadata"]["annotations"].update(mark.patch["metadata"]["annotations"])
    return marked, create.obj


def test_the_host_copy_records_the_service_before_the_virtual_one_is_deleted() -> None:
    virtual = node_port_service()
    host = host_stored(to_host(virtual))
    mark, delete, create = sync(virtual, host)
    assert isinstance(create, Create)
    assert mark == Patch(Side.HOST, resources.SERVICES, HOST_NAME, HOST_NS, {"metadata": {
        "annotations": {RECREATING: json.dumps({"uid": "svc-uid-1", "object": create.obj},
                                               sort_keys=True)}}})
    assert delete == Delete(Side.VIRTUAL, resources.SERVICES, "web", "team", "svc-uid-1")
    assert create.obj["spec"]["clusterIP"] == HOST_IP


def test_an_interrupted_re_create_is_finished_not_taken_for_an_orphan() -> None:
    host, wanted = interrupted()
    actions = plan(ServiceTranslator(), context(), None, host)
    assert actions == [Create(Side.VIRTUAL, resources.SERVICES, wanted)]


def test_the_record_goes_once_the_virtual_service_is_back() -> None:
    host, wanted = interrupted()
    back = {**copy.deepcopy(wanted), "status": {"loadBalancer": {}}}
    back["metadata"]["uid"] = "svc-uid-2"
    (patch,) = sync(back, host)
    assert isinstance(patch, Patch)
    annotations = patch.patch["metadata"]["annotations"]
    assert annotations[RECREATING] is None
    assert annotations[naming.ANNOTATION_OBJECT_UID] == "svc-uid-2"


def test_a_record_of_another_incarnation_is_an_orphan_as_before() -> None:
    host, _ = interrupted()
    host["metadata"]["annotations"][naming.ANNOTATION_OBJECT_UID] = "svc-uid-0"
    (action,) = plan(ServiceTranslator(), context(), None, host)
    assert isinstance(action, Delete)
    assert action.side == Side.HOST
    broken = copy.deepcopy(host)
    broken["metadata"]["annotations"][RECREATING] = "{not json"
    (action,) = plan(ServiceTranslator(), context(), None, broken)
    assert isinstance(action, Delete)
