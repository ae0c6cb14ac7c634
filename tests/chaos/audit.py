"""Who wrote what, when: API server audit logs and per-writer identities for the chaos tests.

Why audit logs: "no object lost, none re-created, never two writers at
once" are claims about *requests*, and only the API servers see every one of
them, including those of a syncer that was SIGKILLed a moment later (its own
metrics die with it). Each writer gets its own identity (a ServiceAccount
token), so the log tells the syncer from the workload, from the tenant's
controller-manager, and one syncer replica from another.

Only writes are logged (metadata level, no bodies), and neither events,
leases of the node agents nor the fake kubelets' status updates: the log
stays small enough to read after each test.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson
import yaml

from contract import resources as r
from contract.resources import Resource
from syncer.kube.client import KubeClient
from syncer.kube.errors import AlreadyExists
from syncer.local.cluster import ControlPlane
from tests.support import kubeconfig_for_token

_WRITES = ["create", "update", "patch", "delete", "deletecollection"]
_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "users": ["vcsync-kwok", "system:kube-scheduler"]},
        {"level": "None", "resources": [
            {"group": "", "resources": ["events", "endpoints"]},
            {"group": "discovery.k8s.io", "resources": ["endpointslices"]},
        ]},
        {"level": "Metadata", "verbs": _WRITES},
        {"level": "None"},
    ],
}
LOG_NAME = "audit.log"
CLUSTERROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings",
                               "ClusterRoleBinding", namespaced=False)


def apiserver_flags(root: Path) -> list[str]:
    """kube-apiserver flags that log every write under ``root`` (the policy file is made)."""
    root.mkdir(parents=True, exist_ok=True)
    policy = root / "audit-policy.yaml"
    policy.write_text(yaml.safe_dump(_POLICY))
    return [f"--audit-policy-file={policy}", f"--audit-log-path={root / LOG_NAME}",
            "--audit-log-format=json", "--audit-log-maxsize=0", "--audit-log-maxbackup=0"]


def log_of(plane: ControlPlane) -> Path:
    return plane.root / "audit" / LOG_NAME


@dataclass(frozen=True)
class Write:
    """One completed write request, as the API server logged it."""

    at: datetime.datetime
    user: str
    verb: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def target(self) -> tuple[str, str, str]:
        return self.resource, self.namespace, self.name


def writes(path: Path, since: datetime.datetime | None = None) -> list[Write]:
    """Every logged write (response sent) in time order, optionally from ``since`` on."""
    found: list[Write] = []
    if not path.exists():
        return found
    for line in path.read_bytes().splitlines():
        event = orjson.loads(line)
        if event.get("stage") != "ResponseComplete":
            continue
        ref = event.get("objectRef") or {}
        write = Write(
            at=_time(event["requestReceivedTimestamp"]),
            user=(event.get("user") or {}).get("username", ""),
            verb=event.get("verb", ""),
            resource=ref.get("resource", ""),
            subresource=ref.get("subresource", ""),
            namespace=ref.get("namespace", ""),
            name=ref.get("name", ""),
            code=int((event.get("responseStatus") or {}).get("code", 0)),
        )
        if since is None or write.at >= since:
            found.append(write)
    return sorted(found, key=lambda w: w.at)


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def by(user: str, found: Iterable[Write]) -> list[Write]:
    return [w for w in found if w.user == user]


# -- identities ------------------------------------------------------------------------


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


async def identity(
    client: KubeClient, plane: ControlPlane, namespace: str, name: str, path: Path,
) -> Path:
    """A kubeconfig for ``plane`` as ServiceAccount ``namespace/name`` with cluster-admin.

    The account and its binding are made with ``client`` (an admin); the
    token lasts longer than any test.
    """
    sa = {"metadata": {"name": name, "namespace": namespace}}
    binding = {
        "metadata": {"name": f"chaos-{namespace}-{name}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }
    for resource, obj, ns in ((r.SERVICEACCOUNTS, sa, namespace),
                              (CLUSTERROLEBINDINGS, binding, None)):
        with contextlib.suppress(AlreadyExists):
            await client.create(resource, obj, ns)
    token = await client.create_subresource(
        r.SERVICEACCOUNTS, name, "token", {"spec": {"expirationSeconds": 6 * 3600}}, namespace)
    return kubeconfig_for_token(plane, token["status"]["token"], path)


# -- what the log proves ---------------------------------------------------------------

_SYNCER_CREATES_VIRTUAL = frozenset({"pods/binding", "nodes", "events", "services",
                                     "serviceaccounts/token"})
"""Virtual kinds the syncer creates: bindings, mirrored nodes, copied events, Services
re-created once with the host's ClusterIP, and TokenRequests for pods' tokens. Anything
else is a re-creation."""


@dataclass
class Tally:
    """Lost and duplicated objects as the API servers saw them, plus write counts."""

    lost_pods: list[str]
    """Virtual pods the syncer deleted while nobody else had asked for their deletion
    (a pod that ran, whose host copy vanished, is deleted rather than re-created)."""
    recreated: list[str]
    """Host objects the syncer created more than once under one name (names are never
    reused by the workload), virtual Services it re-created more than once, and virtual
    objects of kinds it must never create."""
    host_writes: int
    virtual_writes: int

    def figures(self) -> dict[str, int]:
        return {"lost_pods": len(self.lost_pods), "recreated": len(self.recreated),
                "syncer_host_writes": self.host_writes,
                "syncer_virtual_writes": self.virtual_writes}


def _label(w: Write) -> str:
    sub = f"/{w.subresource}" if w.subresource else ""
    return f"{w.resource}{sub} {w.namespace}/{w.name}".replace(" /", " ")


def lost_pods(virtual: list[Write], syncers: set[str]) -> list[str]:
    """Virtual pods a syncer deleted first (no delete by anyone else before)."""
    asked: set[tuple[str, str]] = set()
    lost: list[str] = []
    for w in virtual:
        if w.resource != "pods" or w.verb != "delete" or w.subresource or not w.ok:
            continue
        key = (w.namespace, w.name)
        if w.user not in syncers:
            asked.add(key)
        elif key not in asked:
            lost.append(f"virtual pod {w.namespace}/{w.name} deleted by {w.user} at {w.at}")
            asked.add(key)
    return lost


def recreations(host: list[Write], virtual: list[Write], syncers: set[str]) -> list[str]:
    """Objects the syncers created more often than a converging syncer ever would."""
    found: list[str] = []
    created: dict[tuple[str, str, str], int] = {}
    for w in host:
        if w.user in syncers and w.verb == "create" and w.ok and not w.subresource:
            created[w.target] = created.get(w.target, 0) + 1
    found += [f"host {res} {ns}/{name} created {n} times"
              for (res, ns, name), n in sorted(created.items()) if n > 1]
    deleted: dict[tuple[str, str, str], int] = {}
    for w in virtual:
        if w.user not in syncers or not w.ok:
            continue
        kind = f"{w.resource}/{w.subresource}" if w.subresource else w.resource
        if w.verb == "create" and kind not in _SYNCER_CREATES_VIRTUAL:
            found.append(f"virtual {_label(w)} created by the syncer")
        if w.verb == "delete" and w.resource == "services":
            deleted[w.target] = deleted.get(w.target, 0) + 1
    found += [f"virtual Service {ns}/{name} re-created {n} times"
              for (_, ns, name), n in sorted(deleted.items()) if n > 1]
    return found


def tally(host_log: Path, virtual_log: Path, syncers: set[str],
          since: datetime.datetime) -> Tally:
    host, virtual = writes(host_log, since), writes(virtual_log, since)
    mine = [w for w in host if w.user in syncers], [w for w in virtual if w.user in syncers]
    return Tally(lost_pods(virtual, syncers), recreations(host, virtual, syncers),
                 len(mine[0]), len(mine[1]))


# -- one writer at a time ------------------------------------------------------------------


@dataclass
class Writers:
    """Who wrote when, judged against the Lease: see :func:`single_writer`."""

    violations: list[str]
    terms: int
    """Leadership terms: runs of Lease writes by the same identity."""
    runs: int
    """Runs of data writes by the same identity (interleaved writers make many)."""
    writes: dict[str, int]
    """Data writes per identity (both API servers)."""


def single_writer(host: list[Write], virtual: list[Write], identities: dict[str, str],
                  lease: str, renew_deadline: float, grace: float = 0.5) -> Writers:
    """Prove that only the Lease holder wrote, and only within its renew deadline.

    ``identities`` maps audit user names to writer identities (a replica has
    one user on each API server). Walking all writes of both servers in time
    order: a Lease write (create or update of ``lease``) by X makes X the
    holder, renewed now; a data write by X is a violation unless X holds the
    Lease and its last renewal is at most ``renew_deadline`` (+ ``grace`` for
    the request's way to the server) old. A takeover by Y ends X's right to
    write at once, so two writers at once always show.
    """
    stream = sorted((w for w in (*host, *virtual) if w.user in identities and w.ok),
                    key=lambda w: w.at)
    holder, renewed = "", datetime.datetime.min.replace(tzinfo=datetime.UTC)
    violations: list[str] = []
    terms = runs = 0
    last_writer = ""
    counts: dict[str, int] = {}
    limit = datetime.timedelta(seconds=renew_deadline + grace)
    for w in stream:
        who = identities[w.user]
        if w.resource == "leases" and w.name == lease:
            terms += who != holder
            holder, renewed = who, w.at
            continue
        counts[who] = counts.get(who, 0) + 1
        runs += who != last_writer
        last_writer = who
        if who != holder:
            violations.append(f"{who} wrote {_label(w)} at {w.at} while {holder or 'nobody'} "
                              "held the Lease")
        elif w.at - renewed > limit:
            violations.append(f"{who} wrote {_label(w)} at {w.at}, {w.at - renewed} after its "
                              "last renewal")
    return Writers(violations, terms, runs, counts)
