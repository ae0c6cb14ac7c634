"""Virtual nodes point kube-apiserver at the syncer's kubelet endpoint (translators.nodes)."""

from __future__ import annotations

from typing import Any

from contract.facts import Facts
from contract.resources import Obj
from contract.translator import Context, Create, Patch
from tests.unit.fakes import NoLookup
from translators import nodes

ENDPOINT = ("127.0.0.1", 40123)


def host_node(**status: Any) -> Obj:
    return {
        "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
        "spec": {},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.0.7"},
                          {"type": "Hostname", "address": "n1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "capacity": {"cpu": "4"},
            **status,
        },
    }


def ctx(endpoint: tuple[str, int] | None) -> Context:
    return Context("vc", "vcluster-vc", NoLookup(), facts=Facts(kubelet_endpoint=endpoint))


def test_with_the_endpoint_the_node_shows_it_instead_of_the_host_node() -> None:
    (action,) = nodes.NodeTranslator({}).to_virtual(host_node(), ctx(ENDPOINT))
    assert isinstance(action, Create)
    status = action.obj["status"]
    assert status["addresses"] == [{"type": "InternalIP", "address": "127.0.0.1"}]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 40123}}
    assert status["capacity"] == {"cpu": "4"}


def test_an_existing_node_is_moved_to_the_endpoint_once_and_then_left_alone() -> None:
    translator = nodes.NodeTranslator({})
    old = host_node()  # as copied before the endpoint existed
    old["status"]["daemonEndpoints"] = {"kubeletEndpoint": {"Port": 0}}
    (action,) = translator.sync(old, host_node(), ctx(ENDPOINT))
    assert isinstance(action, Patch)
    assert action.subresource == "status"
    assert action.patch == {"status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 40123}},
    }}
    moved = nodes.virtual_node(host_node(), ENDPOINT)
    assert translator.sync(moved, host_node(), ctx(ENDPOINT)) == []


def test_without_the_endpoint_the_host_addresses_are_copied_and_the_port_left_alone() -> None:
    """kube-apiserver always returns daemonEndpoints; comparing it with the endpoint off
    would mean a write per sync."""
    translator = nodes.NodeTranslator({})
    virtual = nodes.virtual_node(host_node())
    assert "daemonEndpoints" not in virtual["status"]
    assert virtual["status"]["addresses"] == host_node()["status"]["addresses"]
    virtual["status"]["daemonEndpoints"] = {"kubeletEndpoint": {"Port": 0}}
    assert translator.sync(virtual, host_node(), ctx(None)) == []
