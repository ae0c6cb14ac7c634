"""The kubelet endpoint's pieces that need no cluster: pod resolution through the caches,
HTTP/1.1 heads and bodies, the splice's ending and backpressure, the client check and
the minted serving certificate."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509

from contract import naming
from contract.resources import Obj
from syncer.kubelet import http1, splice
from syncer.kubelet.pods import CachedPods, HostPod
from syncer.kubelet.tls import CLIENT_COMMON_NAME, mint_serving_cert, peer_allowed
from syncer.local.pki import generate_pki
from syncer.store import Store

VC, HOST_NS = "vc", "vcluster-vc"


def pod(name: str, namespace: str, uid: str) -> Obj:
    return {"metadata": {"name": name, "namespace": namespace, "uid": uid}}


def host_pod(virtual: Obj, vcluster: str = VC, name: str | None = None) -> Obj:
    meta = virtual["metadata"]
    identity = naming.VirtualIdentity(meta["name"], meta["namespace"], meta["uid"], "Pod")
    return {"metadata": {
        "name": name or naming.host_name(meta["name"], meta["namespace"], vcluster),
        "namespace": HOST_NS,
        "labels": {naming.LABEL_MANAGED_BY: vcluster},
        "annotations": naming.host_annotations({}, identity),
    }}


def stores(virtuals: list[Obj], hosts: list[Obj]) -> CachedPods:
    virtual, host = Store(), Store()
    for obj in virtuals:
        virtual.upsert(obj)
    for obj in hosts:
        host.upsert(obj)
    return CachedPods(virtual, host, VC, HOST_NS)


# -- resolution --------------------------------------------------------------------------


def test_a_synced_pod_resolves_to_its_host_pod() -> None:
    web = pod("web", "demo", "u1")
    pods = stores([web], [host_pod(web)])
    assert pods.host_pod("demo", "web") == HostPod(HOST_NS, "web-x-demo-x-vc")


def test_only_this_clusters_copy_of_exactly_that_pod_resolves() -> None:
    web = pod("web", "demo", "u1")
    forged = pod("web-x-demo-x-vc", "other", "u2")  # a virtual name shaped like a host name
    other_tenant = host_pod(web, vcluster="vc2", name="web-x-demo-x-vc")
    stale = host_pod(pod("web", "demo", "old-uid"))  # a copy of an earlier pod of that name
    assert stores([web], []).host_pod("demo", "web") is None
    assert stores([], [host_pod(web)]).host_pod("demo", "web") is None
    assert stores([web], [other_tenant]).host_pod("demo", "web") is None
    assert stores([web], [stale]).host_pod("demo", "web") is None
    assert stores([web, forged], [host_pod(web)]).host_pod("other", "web-x-demo-x-vc") is None
    assert CachedPods(None, None, VC, HOST_NS).host_pod("demo", "web") is None


# -- HTTP/1.1 ------------------------------------------------------------------------------


def reader_of(data: bytes, limit: int = 2**16) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=limit)
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_request_head_is_parsed_and_what_follows_stays_in_the_reader() -> None:
    reader = reader_of(b"POST /exec/a/b/c?command=ls HTTP/1.1\r\nHost: x\r\n"
                       b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
                       b"X-Stream-Protocol-Version: v3.channel.k8s.io\r\n\r\nSPDYBYTES")
    head = await http1.read_head(reader)
    assert head.start == ("POST", "/exec/a/b/c?command=ls", "HTTP/1.1")
    assert head.get_all("x-stream-protocol-version") == ["v4.channel.k8s.io",
                                                         "v3.channel.k8s.io"]
    assert await reader.read() == b"SPDYBYTES"


@pytest.mark.parametrize("data", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
    b"GET / HTTP/1.1\r\n Folded: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n",
    b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
])
async def test_bad_heads_are_protocol_errors(data: bytes) -> None:
    with pytest.raises(http1.ProtocolError):
        await http1.read_head(reader_of(data, limit=http1.MAX_HEAD))


def test_written_heads_refuse_line_breaks() -> None:
    with pytest.raises(http1.ProtocolError):
        http1.request_head("GET", "/", [("X", "a\r\nInjected: 1")])


async def test_bodies_by_length_chunks_and_close_are_cut_at_the_limit() -> None:
    head = http1.Head(("HTTP/1.1", "404", "Not Found"), [("Content-Length", "5")])
    assert await http1.read_body(reader_of(b"helloEXTRA"), head, 100) == b"hello"
    chunked = http1.Head(("HTTP/1.1", "400", "x"), [("Transfer-Encoding", "chunked")])
    assert await http1.read_body(reader_of(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), chunked,
                                 100) == b"abcde"
    assert await http1.read_body(reader_of(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), chunked,
                                 4) == b"abcd"
    plain = http1.Head(("HTTP/1.1", "500", "x"), [])
    assert await http1.read_body(reader_of(b"x" * 50), plain, 10) == b"x" * 10
    cut = http1.Head(("HTTP/1.1", "500", "x"), [("Content-Length", "50")])
    assert await http1.read_body(reader_of(b"short"), cut, 100) == b"short"


def test_error_answers_are_complete_and_close() -> None:
    data = http1.error_response(404, 'pods "web" not found')
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b"Connection: close" in head
    assert b"Content-Length: 20" in head
    assert body == b'pods "web" not found'


# -- splice ----------------------------------------------------------------------------------


Pair = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
async def connections() -> AsyncIterator[tuple[Pair, Pair, Pair, Pair]]:
    """(tenant as the endpoint sees it, tenant's own end, host as seen, host's own end)."""
    accepted: asyncio.Queue[Pair] = asyncio.Queue()

    async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await accepted.put((r, w))

    server = await asyncio.start_server(accept, "127.0.0.1", 0, limit=splice.CHUNK)
    port = server.sockets[0].getsockname()[1]
    tenant_end = await asyncio.open_connection("127.0.0.1", port)
    tenant = await accepted.get()
    host = await asyncio.open_connection("127.0.0.1", port, limit=splice.CHUNK)
    host_end = await accepted.get()
    yield tenant, tenant_end, host, host_end
    server.close()
    for _, w in (tenant, tenant_end, host, host_end):
        w.close()


async def test_splice_copies_both_ways_and_ends_both_when_the_host_ends(
    connections: tuple[Pair, Pair, Pair, Pair],
) -> None:
    tenant, tenant_end, host, host_end = connections
    flow = splice.Flow()
    task = asyncio.create_task(splice.splice(tenant, host, flow))
    tenant_end[1].write(b"stdin bytes")
    assert await asyncio.wait_for(host_end[0].readexactly(11), 5) == b"stdin bytes"
    host_end[1].write(b"stdout bytes")
    host_end[1].close()
    assert await asyncio.wait_for(tenant_end[0].read(), 5) == b"stdout bytes"  # then EOF
    await asyncio.wait_for(task, 5)
    assert (flow.up, flow.down) == (11, 12)


async def test_splice_releases_the_host_when_the_tenant_goes(
    connections: tuple[Pair, Pair, Pair, Pair],
) -> None:
    tenant, tenant_end, host, host_end = connections
    task = asyncio.create_task(splice.splice(tenant, host, splice.Flow()))
    tenant_end[1].close()
    assert await asyncio.wait_for(host_end[0].read(), 5) == b""
    await asyncio.wait_for(task, 5)


async def test_a_slow_tenant_holds_back_the_host_instead_of_buffering(
    connections: tuple[Pair, Pair, Pair, Pair],
) -> None:
    """Backpressure: with the tenant not reading, the splice stops reading the host, so
    the host's writes block once the socket buffers are full; nothing piles up here."""
    tenant, tenant_end, host, host_end = connections
    flow = splice.Flow()
    task = asyncio.create_task(splice.splice(tenant, host, flow))
    payload = b"x" * (64 * 1024 * 1024)
    host_end[1].write(payload)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(host_end[1].drain(), 1.0)  # awaited: the host cannot drain
    moved = flow.down
    assert moved < 16 * 1024 * 1024, f"{moved} bytes were taken from the host"
    received = 0
    while received < len(payload):
        received += len(await asyncio.wait_for(tenant_end[0].read(2**20), 10))
    assert received == len(payload)
    host_end[1].close()
    await asyncio.wait_for(task, 10)


# -- TLS -----------------------------------------------------------------------------------------


def test_only_kube_apiservers_kubelet_client_is_allowed() -> None:
    assert peer_allowed({"subject": ((("commonName", CLIENT_COMMON_NAME),),)})
    assert not peer_allowed({"subject": ((("commonName", "vcsync-admin"),),)})
    assert not peer_allowed({"subject": ((("organizationName", CLIENT_COMMON_NAME),),)})
    assert not peer_allowed(None)
    assert not peer_allowed({})


def test_the_serving_certificate_names_the_endpoint_and_comes_from_the_kubelet_ca(
    tmp_path: Path,
) -> None:
    pki = generate_pki(tmp_path, "10.96.0.1", {"admin": ("system:masters",)})
    cert_pem, _ = mint_serving_cert(pki.kubelet_ca_cert, pki.kubelet_ca_key, ["127.0.0.1"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    ca = x509.load_pem_x509_certificate(pki.kubelet_ca_cert.read_bytes())
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC)
    client = x509.load_pem_x509_certificate(pki.kubelet_client_cert.read_bytes())
    client.verify_directly_issued_by(ca)
    assert client.subject.rfc4514_string() == f"CN={CLIENT_COMMON_NAME}"
