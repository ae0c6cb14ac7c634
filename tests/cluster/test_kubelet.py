"""kubectl logs, exec, attach, port-forward and cp inside a virtual cluster, end to end.

The whole path is real: kubectl -> the virtual kube-apiserver -> the syncer's kubelet
endpoint (``vcsync run``) -> the host kube-apiserver -> kwok, which simulates the
kubelet API of the host pod (syncer.local.kwok). Every answer read through the
virtual cluster is compared with what the host returns for the host pod itself.

Starting a tenant costs ~15 s here, so the module shares one (vc1, pods in ``demo``)
and a second one (vc2) whose pod tenant vc1 must never reach.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import ssl
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from contract import resources as r
from contract.resources import Obj
from syncer.local.cluster import HostCluster
from syncer.local.pki import Pki
from tests.cluster.tenants import NS, Tenant, pod, running, start_tenant, stop_tenant
from tests.support import eventually, http_get, kubeconfig_for_token

LOGS = r.Resource("kwok.x-k8s.io", "v1alpha1", "logs", "Logs")
ATTACHES = r.Resource("kwok.x-k8s.io", "v1alpha1", "attaches", "Attach")
PORT_FORWARDS = r.Resource("kwok.x-k8s.io", "v1alpha1", "portforwards", "PortForward")
TRANSPORTS = {
    "websocket": {},
    "spdy": {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false",
             "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"},
}
BIG_LOG = 10 * 1024 * 1024
FOLLOWERS = 20


def cri(lines: list[tuple[datetime.datetime, str, str]]) -> str:
    """Log lines in the CRI format kwok reads: (time, stream, message)."""
    return "".join(f"{t.strftime('%Y-%m-%dT%H:%M:%S.%f000Z')} {stream} F {message}\n"
                   for t, stream, message in lines)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def simulate(tenant: Tenant, name: str, kind: r.Resource, spec: Obj) -> None:
    """A kwok simulation object for the host pod of virtual pod ``name``."""
    await tenant.stack.host.create(
        kind, {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": kind.kind,
               "metadata": {"name": tenant.host_pod(name)}, "spec": spec},
        tenant.stack.host_namespace)


OLD = now() - datetime.timedelta(hours=3)
APP_LOG = [(OLD, "stdout", "old line one"), (OLD, "stderr", "old line two"),
           (now(), "stdout", "recent line one"), (now(), "stdout", "recent line two"),
           (now(), "stderr", "recent line three")]


@pytest.fixture(scope="module")
async def tenant(host_cluster: HostCluster, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[Tenant]:
    """vc1 with pod ``web`` (containers app, side): its own log, previous log and attach
    file on the host's kwok; pod ``bare`` with the host's default simulation only."""
    t = await start_tenant(host_cluster, tmp_path_factory.mktemp("vc1"), "vc1")
    (t.files / "app.log").write_text(cri(APP_LOG))
    (t.files / "app-previous.log").write_text(cri([(OLD, "stdout", "before the restart")]))
    (t.files / "attach.log").write_text("")
    for name in ("web", "bare"):
        await t.stack.virtual.create(r.PODS, pod(name, "app", "side"), NS)
        await running(t.stack.virtual, name)
    await simulate(t, "web", LOGS, {"logs": [
        {"containers": ["app"], "logsFile": str(t.files / "app.log"),
         "previousLogsFile": str(t.files / "app-previous.log")}]})
    await simulate(t, "web", ATTACHES, {"attaches": [{"logsFile": str(t.files / "attach.log")}]})
    eventually(lambda: b"recent line three" in t.host_kubectl(
        "logs", t.host_pod("web"), "-c", "app").stdout, "kwok serving web's own log", 60)
    yield t
    await stop_tenant(t)


@pytest.fixture(scope="module")
async def other(host_cluster: HostCluster, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[Tenant]:
    """vc2, another tenant on the same host, with pod ``payroll``."""
    t = await start_tenant(host_cluster, tmp_path_factory.mktemp("vc2"), "vc2")
    await t.stack.virtual.create(r.PODS, pod("payroll", "app"), NS)
    await running(t.stack.virtual, "payroll")
    yield t
    await stop_tenant(t)


# -- logs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    [], ["--tail=2"], ["--timestamps"], ["--since=1h"], ["--limit-bytes=20"], ["--previous"],
    ["--tail=1", "--timestamps"],
], ids=lambda o: " ".join(o) or "plain")
def test_logs_equal_the_host_pods(tenant: Tenant, options: list[str]) -> None:
    virtual = tenant.kubectl("logs", "web", "-n", NS, "-c", "app", *options)
    host = tenant.host_kubectl("logs", tenant.host_pod("web"), "-c", "app", *options)
    assert (virtual.returncode, virtual.stdout) == (0, host.stdout), virtual.stderr
    assert host.returncode == 0, host.stderr
    assert host.stdout


def test_log_options_do_what_they_say(tenant: Tenant) -> None:
    def text(*options: str) -> list[str]:
        out = tenant.kubectl("logs", "web", "-n", NS, "-c", "app", *options)
        assert out.returncode == 0, out.stderr
        return out.stdout.decode().splitlines()

    assert text() == [m for _, _, m in APP_LOG]
    assert text("--tail=2") == ["recent line two", "recent line three"]
    assert text("--since=1h") == ["recent line one", "recent line two", "recent line three"]
    assert text("--previous") == ["before the restart"]
    stamped = text("--timestamps")
    assert stamped[0].startswith(OLD.strftime("%Y-%m-%dT%H:%M:%S"))
    assert stamped[0].endswith(
        " old line one")
    assert len("".join(f"{line}\n" for line in text("--limit-bytes=20"))) <= 21


def test_log_errors_equal_the_host_pods_with_virtual_names(tenant: Tenant) -> None:
    """``--previous`` where no previous log exists: the host's error, in virtual names."""
    virtual = tenant.kubectl("logs", "bare", "-n", NS, "-c", "app", "--previous")
    host = tenant.host_kubectl("logs", tenant.host_pod("bare"), "-c", "app", "--previous")
    assert host.returncode != 0
    assert host.stderr
    assert virtual.returncode == host.returncode
    assert virtual.stderr.decode() == tenant.as_host(host.stderr.decode(), "bare")
    assert tenant.stack.host_namespace.encode() not in virtual.stderr


def test_the_default_simulated_log_is_shown(tenant: Tenant) -> None:
    out = tenant.kubectl("logs", "bare", "-n", NS, "-c", "side")
    assert out.returncode == 0, out.stderr
    assert b"runs on a kwok node" in out.stdout


def test_follow_shows_lines_as_they_are_appended(tenant: Tenant, tmp_path: Path) -> None:
    out = tmp_path / "follow.out"
    proc = tenant.popen("logs", "-f", "web", "-n", NS, "-c", "app", out=out)
    try:
        eventually(lambda: b"recent line three" in out.read_bytes(), "the existing lines", 30)
        for i in range(3):
            text = f"appended {i}"
            with (tenant.files / "app.log").open("a") as log:
                log.write(cri([(now(), "stdout", text)]))
            eventually(lambda text=text: text.encode() in out.read_bytes(),  # type: ignore[misc]
                       f"'{text}' while following", 30)
        assert proc.poll() is None, "the follow ended by itself"
    finally:
        proc.kill()
        proc.wait()


# -- exec, attach, port-forward, cp over both transports ---------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_equals_the_host_pods(tenant: Tenant, transport: str) -> None:
    env = TRANSPORTS[transport]
    script = "echo to-stdout; echo to-stderr >&2; exit 3"
    virtual = tenant.kubectl("exec", "web", "-n", NS, "-c", "app", "--", "sh", "-c", script,
                             env=env)
    host = tenant.host_kubectl("exec", tenant.host_pod("web"), "-c", "app", "--", "sh", "-c",
                               script, env=env)
    assert virtual.stdout == host.stdout == b"to-stdout\n"
    assert virtual.returncode == host.returncode != 0
    assert virtual.stderr == host.stderr
    assert b"to-stderr" in virtual.stderr
    assert b"exit status 3" in virtual.stderr
    ok = tenant.kubectl("exec", "web", "-n", NS, "--", "true", env=env)
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_passes_stdin(tenant: Tenant, transport: str) -> None:
    """kwok never closes a command's stdin, so the command reads a line, not to EOF."""
    out = tenant.kubectl("exec", "-i", "web", "-n", NS, "--", "sh", "-c",
                         "read line; echo got $line", env=TRANSPORTS[transport],
                         stdin=b"hello from stdin\n")
    assert (out.returncode, out.stdout) == (0, b"got hello from stdin\n"), out.stderr


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_attach_streams_the_containers_output(tenant: Tenant, transport: str,
                                              tmp_path: Path) -> None:
    out = tmp_path / "attach.out"
    proc = tenant.popen("attach", "web", "-n", NS, "-c", "app", env=TRANSPORTS[transport],
                        out=out)
    marker = f"attached-{uuid.uuid4().hex[:8]}"
    try:
        def appended() -> bool:  # kwok attaches at the file's end: write until it is seen
            with (tenant.files / "attach.log").open("a") as log:
                log.write(cri([(now(), "stdout", marker)]))
            return marker.encode() in out.read_bytes()

        eventually(appended, f"{marker} through kubectl attach ({transport})", 30, interval=1.0)
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    """A loopback echo server (the 'container port' the host pod forwards to)."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        server.settimeout(0.5)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


@pytest.fixture(scope="module")
async def forwarded(tenant: Tenant, echo_port: int) -> int:
    await simulate(tenant, "web", PORT_FORWARDS, {"forwards": [
        {"ports": [8080], "target": {"address": "127.0.0.1", "port": echo_port}}]})
    return echo_port


def _echo_through(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        while len(received) < len(payload) and (chunk := conn.recv(65536)):
            received += chunk
    return received


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_port_forward_carries_bytes_both_ways(tenant: Tenant, forwarded: int,
                                              transport: str) -> None:
    proc = tenant.popen("port-forward", "--address=127.0.0.1", "pod/web", ":8080", "-n", NS,
                        env=TRANSPORTS[transport])
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()  # Forwarding from 127.0.0.1:PORT -> 8080
        assert line.startswith("Forwarding from 127.0.0.1:"), line
        local = int(line.split(":")[1].split()[0])
        payload = os.urandom(1024 * 1024)
        assert _echo_through(local, payload) == payload
        assert _echo_through(local, b"second connection") == b"second connection"
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cp_both_directions(tenant: Tenant, transport: str, tmp_path: Path) -> None:
    """``kubectl cp`` runs tar in the pod: on the local host, in kwok's scratch directory."""
    env = TRANSPORTS[transport]
    name = f"cp-{transport}-{uuid.uuid4().hex[:6]}.bin"
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(4_000_000))
    up = tenant.kubectl("cp", str(source), f"{NS}/web:{name}", "-c", "app", env=env)
    assert up.returncode == 0, up.stderr
    scratch = tenant.stack.host_cluster.root / "kwok" / "exec" / name
    assert scratch.read_bytes() == source.read_bytes()
    back = tmp_path / "back.bin"
    down = tenant.kubectl("cp", f"{NS}/web:{name}", str(back), "-c", "app", env=env)
    assert down.returncode == 0, down.stderr
    assert back.read_bytes() == source.read_bytes()
    scratch.unlink()


# -- who may reach what ------------------------------------------------------------------------


def _endpoint(tenant: Tenant) -> tuple[str, int]:
    return "127.0.0.1", tenant.stack.kubelet_port


def _client_cert(tenant: Tenant, common_name: str, directory: Path) -> tuple[Path, Path]:
    """A client certificate from the tenant's kubelet CA with ``common_name``."""
    pki = tenant.plane.pki
    assert isinstance(pki, Pki)
    ca = x509.load_pem_x509_certificate(pki.kubelet_ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.kubelet_ca_key.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    start = now() - datetime.timedelta(minutes=5)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(hours=1)).sign(ca_key, hashes.SHA256()))
    cert_path, key_path = directory / f"{common_name}.crt", directory / f"{common_name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _exchange(tenant: Tenant, path: str, cert: tuple[Path, Path] | None) -> bytes:
    """Everything the tenant's kubelet endpoint answers to ``GET path`` (TLS, ``cert``)."""
    pki = tenant.plane.pki
    assert isinstance(pki, Pki)
    context = ssl.create_default_context(cafile=str(pki.kubelet_ca_cert))
    context.check_hostname = False
    if cert is not None:
        context.load_cert_chain(*cert)
    host, port = _endpoint(tenant)
    with socket.create_connection((host, port), timeout=10) as raw, \
            context.wrap_socket(raw) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return data


def _call(tenant: Tenant, path: str, cert: tuple[Path, Path] | None = None) -> tuple[int, str]:
    """(status, body) of ``GET path`` as kube-apiserver (its kubelet client certificate)
    or with ``cert``."""
    pki = tenant.plane.pki
    assert isinstance(pki, Pki)
    data = _exchange(tenant, path, cert or (pki.kubelet_client_cert, pki.kubelet_client_key))
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def test_only_this_tenants_pods_are_reachable(tenant: Tenant, other: Tenant,
                                              host_cluster: HostCluster) -> None:
    """Another tenant's pod (by its virtual or its host name), a host-only pod, this
    tenant's own host pod by its host name: 404 naming only what was asked for."""
    status, body = _call(tenant, "/containerLogs/demo/web/app")
    assert status == 200
    assert "recent line three" in body
    kube_system = host_cluster.client().json("GET", "/api/v1/namespaces/kube-system/pods")
    host_only = kube_system["items"][0]["metadata"]["name"] if kube_system["items"] else "x"
    targets = [
        ("containerLogs", NS, "payroll", "/app"),
        ("containerLogs", other.stack.host_namespace, other.host_pod("payroll"), "/app"),
        ("exec", other.stack.host_namespace, other.host_pod("payroll"),
         "/app?command=id&output=1"),
        ("containerLogs", "kube-system", host_only, "/main"),
        ("portForward", tenant.stack.host_namespace, tenant.host_pod("web"), "?port=8080"),
    ]
    for call, namespace, name, rest in targets:
        status, body = _call(tenant, f"/{call}/{namespace}/{name}{rest}")
        assert (status, body) == (404, f'pods "{name}" not found in namespace "{namespace}"')
    via_api = tenant.kubectl("logs", "payroll", "-n", NS)
    assert via_api.returncode != 0
    assert b"not found" in via_api.stderr


def test_only_kube_apiserver_may_call_the_endpoint(tenant: Tenant, tmp_path: Path) -> None:
    """No client certificate: the handshake fails, nothing is answered; one from the
    kubelet CA with another name: 403 and no log."""
    try:
        answered = _exchange(tenant, "/containerLogs/demo/web/app", None)
    except (ssl.SSLError, ConnectionError):
        answered = b""
    assert answered == b""
    status, body = _call(tenant, "/containerLogs/demo/web/app",
                         _client_cert(tenant, "vcsync-admin", tmp_path))
    assert status == 403
    assert "recent line" not in body


async def test_a_tenant_user_without_exec_rights_is_refused_by_the_virtual_api(
    tenant: Tenant, tmp_path: Path
) -> None:
    v = tenant.stack.virtual
    await v.create(r.SERVICEACCOUNTS, {"metadata": {"name": "viewer"}}, NS)
    await v.create(r.Resource("rbac.authorization.k8s.io", "v1", "roles", "Role"), {
        "metadata": {"name": "viewer"},
        "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"],
                   "verbs": ["get", "list"]}]}, NS)
    await v.create(r.ROLEBINDINGS, {
        "metadata": {"name": "viewer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "viewer"},
        "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": NS}]}, NS)
    token = await v.create_subresource(r.SERVICEACCOUNTS, "viewer", "token",
                                       {"spec": {"expirationSeconds": 600}}, NS)
    config = kubeconfig_for_token(tenant.plane, token["status"]["token"], tmp_path / "viewer")

    def logs_allowed() -> bool:  # RBAC caches settle within a second or two
        return tenant.kubectl("logs", "web", "-n", NS, "-c", "app",
                              kubeconfig=config).returncode == 0

    eventually(logs_allowed, "the viewer reading logs", 30)
    refused = tenant.kubectl("exec", "web", "-n", NS, "--", "true", kubeconfig=config)
    assert refused.returncode != 0
    assert b"forbidden" in refused.stderr.lower()
    syncer_stats = orjson.loads(http_get(f"{tenant.syncer.url}/debug/statistics"))
    assert syncer_stats["kubelet"]["requests"] > 0


# -- load and restarts (last: the restart test replaces the module's syncer) -------------------


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.fixture(scope="module")
async def big(tenant: Tenant) -> int:
    """Pod ``big`` whose log is 10 MiB; the number of bytes ``kubectl logs`` returns."""
    await tenant.stack.virtual.create(r.PODS, pod("big", "app"), NS)
    await running(tenant.stack.virtual, "big")
    line = "x" * 1000
    count = BIG_LOG // (len(line) + 1)
    stamp = now() - datetime.timedelta(minutes=1)
    (tenant.files / "big.log").write_text(cri([(stamp, "stdout", line)] * count))
    await simulate(tenant, "big", LOGS, {"logs": [{"logsFile": str(tenant.files / "big.log")}]})
    eventually(lambda: len(tenant.kubectl("logs", "big", "-n", NS, "--tail=1").stdout) == 1001,
               "kwok serving big's log", 60)
    return count * (len(line) + 1)


def test_a_big_log_arrives_whole_every_time(tenant: Tenant, big: int) -> None:
    """The host closes right after a log's last byte, while the syncer's reading is
    paused for a slower tenant: nothing of the end may be lost (uvloop's TLS lost 100-200
    KiB of it about every second time; syncer.kubelet.loop)."""
    sizes = [len(tenant.kubectl("logs", "big", "-n", NS).stdout) for _ in range(6)]
    assert sizes == [big] * 6


async def test_many_follows_of_a_big_log_keep_the_syncer_small(
    tenant: Tenant, big: int, tmp_path: Path
) -> None:
    """20 concurrent ``logs -f`` of a 10 MiB log: each gets every byte, and the syncer's
    resident memory grows by far less than what passes through it (200 MiB)."""
    expected = big
    assert tenant.syncer.component is not None
    assert tenant.syncer.component.pid is not None
    pid = tenant.syncer.component.pid
    before = _rss_kib(pid)
    outs = [tmp_path / f"follow-{i}.out" for i in range(FOLLOWERS)]
    procs = [tenant.popen("logs", "-f", "big", "-n", NS, out=out) for out in outs]
    peak = before
    try:
        def all_read() -> bool:
            nonlocal peak
            peak = max(peak, _rss_kib(pid))
            return all(out.stat().st_size >= expected for out in outs)

        eventually(all_read, f"{FOLLOWERS} followers reading {expected} bytes each", 300, 0.5)
        stats = orjson.loads(http_get(f"{tenant.syncer.url}/debug/statistics"))["kubelet"]
        assert stats["open_streams"] == FOLLOWERS
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert all(out.stat().st_size == expected for out in outs)
    growth_mib = (peak - before) / 1024
    assert growth_mib < 48, f"syncer RSS grew {growth_mib:.1f} MiB with {FOLLOWERS} streams"

    def closed() -> bool:
        stats = orjson.loads(http_get(f"{tenant.syncer.url}/debug/statistics"))["kubelet"]
        return bool(stats["open_streams"] == 0)

    eventually(closed, "every stream released after the followers went", 30)


def test_a_syncer_restart_ends_a_follow_and_the_next_one_works(
    tenant: Tenant, tmp_path: Path
) -> None:
    """The follow ends (it does not hang on a dead stream) and the next call works.

    kubectl cannot be told *why* it ended: kube-apiserver copies a kubelet's log stream
    with ``io.Copy`` and drops its error once the answer has begun
    (``apiserver/pkg/endpoints/handlers/responsewriters.StreamObject``), exactly as when
    a real kubelet restarts; so the end is judged by the stream, not by kubectl's code.
    """
    out = tmp_path / "follow.out"
    proc = tenant.popen("logs", "-f", "web", "-n", NS, "-c", "app", out=out)
    try:
        eventually(lambda: b"recent line three" in out.read_bytes(), "the follow started", 30)
        component = tenant.syncer.component
        assert component is not None
        assert component.pid is not None
        os.kill(component.pid, signal.SIGTERM)
        proc.wait(timeout=60)  # raises if the follow outlives the syncer
        tenant.syncer.stop()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert b"recent line three" in out.read_bytes()
    tenant.syncer.start()
    again = tenant.kubectl("logs", "web", "-n", NS, "-c", "app")
    assert again.returncode == 0, again.stderr
    host = tenant.host_kubectl("logs", tenant.host_pod("web"), "-c", "app")
    assert again.stdout == host.stdout
    assert b"recent line three" in again.stdout
    follow = tenant.popen("logs", "-f", "web", "-n", NS, "-c", "app", out=tmp_path / "again")
    try:
        eventually(lambda: b"recent line three" in (tmp_path / "again").read_bytes(),
                   "a new follow after the restart", 30)
    finally:
        follow.kill()
        follow.wait()
