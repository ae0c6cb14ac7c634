"""``vcsync translate``: the host objects the syncer would create for some manifests.

Why: reviewing sync rules (host names, labels, rewritten pod specs, which
ConfigMaps follow a pod) and debugging a translator should not need two
clusters. The real, enabled translators run over the input as the engine's
first reconcile would, against :class:`syncer.offline.ManifestLookup` holding
the input as *virtual* objects. The host side is empty except for what the
engine reads from the host cluster: the ClusterIPs of the Service fronting
the virtual API server and of the DNS Service, which come from flags.

Output: the host objects on stdout (YAML documents, or one JSON list). In
YAML each document starts with ``#`` comments saying where it comes from,
what it references and which token Secret would follow; notes (not synced,
warnings, writes to the virtual side) go to stderr as ``#`` lines.

Limits, by design: only the first reconcile of objects that exist only in
the virtual cluster is shown (no status, no later syncs); Services without
``spec.clusterIP`` (the host allocates it) give pods no ``<SVC>_SERVICE_HOST``
variables, so set one in the manifest to see them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from contract import discovery, naming
from contract.options import Referenced
from contract.resources import Obj, Resource
from contract.translator import (
    Action,
    Context,
    Create,
    Delete,
    Direction,
    IssueTokens,
    Patch,
    Side,
    Translator,
)
from syncer import config as config_mod
from syncer.offline import (
    GroupKind,
    ManifestError,
    ManifestLookup,
    as_created,
    group_kind,
    known_resources,
    read_manifests,
)
from syncer.planning import ensure_actions, plan, record
from syncer.store import object_key

DEFAULT_NAME = "my-vcluster"
DEFAULT_API_SERVICE_IP = "10.96.0.1"
DEFAULT_DNS_SERVICE_IP = "10.96.0.10"
"""kubeadm's defaults for the first and tenth address of 10.96.0.0/12: placeholders only;
in a real cluster both are ClusterIPs the host allocates."""

_WORKLOADS = frozenset({
    "CronJob", "DaemonSet", "Deployment", "Job", "ReplicaSet", "ReplicationController",
    "StatefulSet",
})


class TranslateError(Exception):
    """A translator failed on an input object (a bug, or input the API server would reject)."""


# -- command line -------------------------------------------------------------------


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "translate", help="print the host objects the syncer would create for manifests",
        description="Print the host objects the syncer would create for virtual manifests, "
        "and what they reference. No cluster needed: for reviewing sync rules.",
    )
    p.add_argument("-f", "--filename", dest="files", action="append", required=True,
                   metavar="FILE", help="virtual manifest (YAML, multi-document, kind: List; "
                   "- reads stdin); repeatable")
    p.add_argument("--name", default=DEFAULT_NAME,
                   help="virtual cluster name (default %(default)s)")
    p.add_argument("--host-namespace", help="host namespace (default vcluster-<name>)")
    p.add_argument("--config", help="sync rules (YAML, same keys as the Helm values)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. sync.toHost.configMaps.all=true")
    p.add_argument("--api-service-ip", default=DEFAULT_API_SERVICE_IP,
                   help="ClusterIP of the host Service fronting the virtual API server "
                   "(default %(default)s, a placeholder)")
    p.add_argument("--dns-service-ip", default=DEFAULT_DNS_SERVICE_IP,
                   help="ClusterIP of the host copy of kube-system/kube-dns, pods' nameserver "
                   "(default %(default)s, a placeholder)")
    p.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml",
                   help="format of the host objects (default %(default)s)")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    """Every failure is one ``error:`` line and exit code 1, never a traceback."""
    try:
        items = _translate(args)
    except config_mod.ConfigError as exc:
        print(f"error: invalid configuration: {exc}", file=sys.stderr)
        return 1
    except (ManifestError, TranslateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    render(items, args.output, sys.stdout, sys.stderr)
    return 0


def _translate(args: argparse.Namespace) -> list[Item]:
    """Load everything first (all input is in the lookup before any translator runs, so a
    ConfigMap's filter sees pods given after it), then translate in input order."""
    # Imported here: syncer.app pulls in the engine, aiohttp and uvloop that the
    # other commands never need.
    from syncer.app import read_config, select_translators, translator_facts

    cfg = read_config(args.config, args.set)
    translators = select_translators(cfg)
    installed = discovery.available()
    known = known_resources(installed.values())
    objects, duplicates = _unique([as_created(o, known) for o in _read_all(args.files)])
    if not objects:
        return [Comment("no objects in the input")]
    host_namespace = args.host_namespace or f"vcluster-{args.name}"
    lookup = ManifestLookup(index for t in translators for index in t.indexes())
    for obj in objects:
        lookup.add(Side.VIRTUAL, obj)
    lookup.add(Side.HOST, dns_service(args.name, host_namespace, args.dns_service_ip))
    ctx = Context(args.name, host_namespace, lookup,
                  facts=translator_facts(cfg, args.api_service_ip))
    translation = Translation(translators, ctx, installed, switches())
    return [*duplicates, *translation.run(objects)]


def _read_all(files: Sequence[str]) -> list[Obj]:
    """Every object of every file, in order, so output follows the input."""
    return [obj for name in files for obj in read_manifests(_text(name), _source(name))]


def _source(name: str) -> str:
    return "stdin" if name == "-" else name


def _text(name: str) -> str:
    try:
        return sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ManifestError(f"{_source(name)}: cannot read: {reason}") from None


def _unique(objects: Iterable[Obj]) -> tuple[list[Obj], list[Item]]:
    """One object per identity: the last one given counts (as with ``kubectl apply``)."""
    found: dict[tuple[GroupKind, str], Obj] = {}
    notes: list[Item] = []
    for obj in objects:
        key = (group_kind(obj), object_key(obj))
        if key in found:
            notes.append(Comment(f"{describe(obj)}: given more than once; the last one counts"))
        found[key] = obj
    return list(found.values()), notes


def dns_service(vcluster: str, host_namespace: str, ip: str) -> Obj:
    """The host copy of the DNS Service, as the engine's host cache would hold it.

    Why: the pod translator reads every pod's nameserver from it and waits
    (requeues) while it is missing; offline there is no host cache to fill it.
    """
    name, namespace = naming.DNS_SERVICE
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": naming.host_name(name, namespace, vcluster),
                     "namespace": host_namespace},
        "spec": {"clusterIP": ip},
    }


def switches() -> dict[str, str]:
    """Built-in kind -> the config key that switches it (for notes that say what to set)."""
    return {kind: f"sync.{cls.direction.value}.{cls.config_key()}"
            for kind, cls in discovery.builtins().items()}


def describe(obj: Obj) -> str:
    """``Pod default/web`` or ``Node n1``: how notes name a virtual object."""
    return f"{obj.get('kind', '?')} {object_key(obj)}"


# -- what the engine would do ---------------------------------------------------------


@dataclass(frozen=True)
class Comment:
    """A ``#`` line for the user (stderr), or, if ``about_output``, about the host objects."""

    text: str
    about_output: bool = False


@dataclass(frozen=True)
class Shown:
    """A host object to print, with the comments that explain it."""

    obj: Obj
    comments: list[str] = field(default_factory=list)


Item = Comment | Shown


class Translation:
    """The first reconcile of each input object, recorded instead of written.

    The engine's own decision (:func:`syncer.planning.plan`, and
    :func:`syncer.planning.ensure_actions` for an ``EnsureSynced``), its actions
    dispatched by :func:`syncer.planning.execute` to a recorder
    (:class:`_Recorder`), for objects that exist only in the virtual cluster.
    """

    def __init__(
        self, translators: Iterable[Translator], ctx: Context,
        installed: Mapping[str, type[Translator]], switches: Mapping[str, str],
    ) -> None:
        self.ctx = ctx
        self.enabled = {t.kind: t for t in translators}
        self.to_host = {
            (t.resource.group, t.resource.kind): t
            for t in self.enabled.values() if t.direction is Direction.TO_HOST
        }
        self.installed = installed
        self.switches = switches
        self.items: list[Item] = []
        self._shown: set[tuple[str, str, str]] = set()
        self._ensured: set[tuple[str, str]] = set()

    def run(self, objects: Iterable[Obj]) -> list[Item]:
        for obj in objects:
            try:
                self._translate(obj)
            except Exception as exc:  # a translator's bug must not become a traceback
                raise TranslateError(
                    f"{describe(obj)}: translating failed: {type(exc).__name__}: {exc}"
                ) from exc
        return self.items

    def _translate(self, obj: Obj) -> None:
        label = describe(obj)
        t = self.to_host.get(group_kind(obj))
        if t is None:
            self.note(f"{label}: not synced to the host ({self._no_translator(obj)})")
            return
        actions = plan(t, self.ctx, obj, None)
        if not actions and naming.is_controlled_elsewhere(obj):
            self.note(f"{label}: not synced (its {naming.LABEL_CONTROLLED_BY} label "
                       "hands it to another controller)")
        elif not actions and not t.wants(obj, self.ctx):
            self.note(f"{label}: not synced ({self._filtered(t)})")
        else:
            self.execute(t, obj, actions)

    def switch(self, kind: str) -> str:
        return self.switches.get(kind, f"plugins.{kind}")

    def _no_translator(self, obj: Obj) -> str:
        kind, gk = obj["kind"], group_kind(obj)
        cls = next((c for c in self.installed.values()
                    if (c.resource.group, c.resource.kind) == gk), None)
        if cls is not None and cls.direction is Direction.FROM_HOST:
            return f"{kind} objects are copied from the host, not to it"
        if cls is not None:
            return f"{self.switch(cls.kind)}.enabled is false"
        if kind in _WORKLOADS:
            return f"no enabled translator for {kind}; the virtual controller-manager creates " \
                   "its pods, and those are synced"
        return f"no enabled translator for {kind}; it stays in the virtual cluster"

    def _filtered(self, t: Translator) -> str:
        if issubclass(t.options_type, Referenced):
            return f"nothing in the input references it; {self.switch(t.kind)}.all=true " \
                   "syncs every one"
        return f"filtered by the {self.switch(t.kind)} sync rules"

    def execute(self, t: Translator, virtual: Obj, actions: list[Action]) -> None:
        """Record ``actions``; comments gather on the object's own host copy once it exists."""
        recorder = _Recorder(self, t, virtual)
        record(actions, recorder)
        if not recorder.created:
            self.items += [Comment(f"{recorder.label} {text}", True)
                           for text in recorder.about[1:]]

    def show(self, obj: Obj, comments: list[str]) -> list[str]:
        """Add ``obj`` unless already shown; returns the comment list that now follows it."""
        meta = obj.get("metadata") or {}
        key = (str(obj.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))
        if key in self._shown:
            return []
        self._shown.add(key)
        shown = Shown(obj, comments)
        self.items.append(shown)
        return shown.comments

    def first_sync_tokens(self, t: Translator, virtual: Obj, host: Obj) -> list[str]:
        """Token Secrets come in the first sync after the create (see translators.pods).

        Only its ``IssueTokens`` are shown: the rest depends on what the host
        API server fills in. This step is a preview, so its failure is a note.
        """
        try:
            actions = t.sync(virtual, host, self.ctx)
        except Exception as exc:  # preview only: the create above stands
            self.note(f"{describe(virtual)}: first sync not previewed: {exc!r}")
            return []
        return [tokens_text(a) for a in actions if isinstance(a, IssueTokens)]

    def ensure(self, kind: type[Translator], key: str) -> str:
        """The comment on the referrer; also shows the referenced object's host copy."""
        peer = self.enabled.get(kind.kind)
        ref = f"{kind.resource.kind} {key}"
        if peer is None:
            return f"references: {ref}: not synced ({self.switch(kind.kind)}.enabled is false)"
        source = self.ctx.lookup.get(Side.VIRTUAL, peer.resource, key)
        if source is not None and (kind.kind, key) not in self._ensured:
            self._ensured.add((kind.kind, key))
            self.execute(peer, source, ensure_actions(peer, self.ctx, source, None))
        missing = "" if source is not None else " (not in the input)"
        return f"references: {ref} -> host {self._host_name(key)}{missing}"

    def _host_name(self, key: str) -> str:
        namespace, _, name = key.rpartition("/")
        return self.ctx.host_name(name, namespace) if namespace else name

    def note(self, text: str) -> None:
        self.items.append(Comment(text))


class _Recorder:
    """``vcsync translate``'s executor (:class:`syncer.planning.Executor`) for one object:
    host copies to show, the rest as comments and notes."""

    def __init__(self, translation: Translation, t: Translator, virtual: Obj) -> None:
        self._translation, self._t, self._virtual = translation, t, virtual
        self.label = describe(virtual)
        self.about: list[str] = [f"from {self.label}"]
        self.created = False

    async def create(self, action: Create) -> None:
        if action.side is not Side.HOST or action.subresource is not None:
            self._translation.note(f"{self.label}: would {_write(action)}")
            return
        self.about = self._translation.show(action.obj, self.about)
        self.created = True
        if action.resource == self._t.host:
            self.about += self._translation.first_sync_tokens(self._t, self._virtual,
                                                              action.obj)

    async def patch(self, action: Patch) -> None:
        self._translation.note(f"{self.label}: would {_write(action)}")

    async def delete(self, action: Delete) -> None:
        self._translation.note(f"{self.label}: would {_write(action)}")

    async def ensure(self, kind: type[Translator], key: str) -> None:
        self.about.append(self._translation.ensure(kind, key))

    async def issue_tokens(self, action: IssueTokens) -> float | None:
        self.about.append(tokens_text(action))
        return None

    async def warn(self, reason: str, message: str) -> None:
        self._translation.note(f"{self.label}: warning: {reason}: {message}")

    async def requeue(self, after: float) -> None:
        self._translation.note(f"{self.label}: would retry in {after:g}s (waits for "
                               "something not in the input)")


def _write(action: Create | Patch | Delete) -> str:
    """``delete the virtual Pod default/web`` and the like."""
    verb = {Create: "create", Patch: "patch", Delete: "delete"}[type(action)]
    if isinstance(action, Create):
        meta = action.obj.get("metadata") or {}
        name, namespace = action.name or meta.get("name", ""), meta.get("namespace")
    else:
        name, namespace = action.name, action.namespace
    target = _named(action.resource, name, namespace)
    subresource = None if isinstance(action, Delete) else action.subresource
    sub = f" ({subresource})" if subresource else ""
    return f"{verb} the {action.side} {target}{sub}"


def _named(resource: Resource, name: str, namespace: str | None) -> str:
    return f"{resource.kind} {namespace}/{name}" if namespace else f"{resource.kind} {name}"


def tokens_text(action: IssueTokens) -> str:
    """What an ``IssueTokens`` would put on the host, in one comment line."""
    meta = action.secret_meta
    tokens = ", ".join(
        f"{t.key} (audience {t.audience or 'of the API server'}, {t.expiration_seconds}s)"
        for t in action.tokens
    )
    return (
        f"tokens: host Secret {meta.get('namespace')}/{meta.get('name')} with TokenRequest "
        f"tokens of ServiceAccount {action.namespace}/{action.service_account} issued by the "
        f"virtual API server, bound to the pod, renewed before expiry, owned by the host pod: "
        f"{tokens}"
    )


# -- output ---------------------------------------------------------------------------


def render(items: Sequence[Item], output: str, out: TextIO, err: TextIO) -> None:
    """YAML documents (or one JSON list) on ``out``; notes on ``err``, in order."""
    if output == "json":
        for item in items:
            if isinstance(item, Comment):
                print(f"# {item.text}", file=err)
        json.dump([i.obj for i in items if isinstance(i, Shown)], out, indent=2)
        out.write("\n")
        return
    for item in items:
        if isinstance(item, Shown):
            comments = "".join(f"# {text}\n" for text in item.comments)
            out.write(f"---\n{comments}{yaml.safe_dump(item.obj, sort_keys=False)}")
        elif item.about_output:
            print(f"# {item.text}", file=out)
        else:
            out.flush()  # keep notes next to the objects they follow on a terminal
            print(f"# {item.text}", file=err)
