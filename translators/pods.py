"""Pods: virtual -> host, status and binding back (docs/acceptance.md, scenarios 7-19).

The life of a pod, case by case (the engine picks the case from what exists):

- virtual only, never ran: check the Pod Security Standard, make sure every
  referenced ConfigMap/Secret is on the host, create the host pod
  (``translators.podspec.host_pod``); its service-account tokens follow in
  the first sync, in a Secret owned by the host pod;
- virtual only, but it ran (the host pod vanished: deleted or evicted out of
  band): the virtual pod already shows the last host status; delete it
  rather than silently starting a new copy;
- virtual only and being deleted: the host pod is gone, finish the deletion
  (grace 0: the syncer plays the kubelet's part);
- both: deletion of the virtual pod is passed down with its grace period and
  a uid precondition; once the host scheduler bound the host pod, the virtual
  pod is bound to the same node (its virtual Node made first); status flows
  up through the batched status writer; mutable spec fields flow down;
- host only: an orphan (also after a restart), deleted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import orjson

from contract import naming, resources
from contract.options import PodOptions
from contract.resources import Obj
from contract.translator import (
    ALL_IN_NAMESPACE,
    Action,
    Context,
    Create,
    Delete,
    EnsureSynced,
    HostRule,
    IssueTokens,
    Patch,
    Requeue,
    Side,
    Translator,
    Trigger,
    Warn,
)
from translators import podspec, policy, pss, references
from translators.configmaps import ConfigMapTranslator
from translators.nodes import NodeTranslator
from translators.priorityclasses import PriorityClassTranslator
from translators.referenced import ambiguous_names, name_conflict
from translators.secrets import SecretTranslator

_DNS_RETRY = 1.0
_RAN_PHASES = frozenset({"Running", "Succeeded", "Failed"})
_MiB = 1024 * 1024
MAX_HOST_POD_BYTES = 3 * _MiB // 2
"""etcd's default request limit (``--max-request-bytes``): the host stores no bigger object."""
POD_TOO_LARGE = "PodTooLarge"
_TOO_LARGE_RETRY = 60.0
"""Seconds until a pod too large for the host is looked at again (Services may go away)."""


def token_secret_name(virtual: Obj) -> str:
    """Host name of a pod's token Secret (:func:`contract.naming.token_secret_name`)."""
    return naming.token_secret_name(virtual["metadata"].get("uid", ""))


def _ran(virtual: Obj) -> bool:
    status = virtual.get("status") or {}
    return bool(status.get("startTime")) or status.get("phase") in _RAN_PHASES


def _meta(obj: Obj) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return meta["name"], meta.get("namespace", ""), meta.get("uid", "")


class PodTranslator(Translator):
    kind = "pods"
    summary = "Sync pods (with the ConfigMaps, Secrets and token Secrets they need)."
    enabled_by_default = True
    options_type = PodOptions
    resource = resources.PODS
    host_rules = (
        HostRule(resources.PODS, ("patch",), "ephemeralcontainers"),
        HostRule(resources.PODS, ("get",), "log"),
        *(HostRule(resources.PODS, ("create",), sub) for sub in ("exec", "attach", "portforward")),
        HostRule(resources.SECRETS, ("create", "get", "update")),
        HostRule(resources.POD_METRICS, ("get", "list")),
    )
    """Debug containers; the subresources the kubelet endpoint (syncer.kubelet) forwards
    tenants' calls to; each pod's token Secret (the writer); kubectl top (syncer.metricsapi)."""

    @classmethod
    def ensures(cls) -> tuple[type[Translator], ...]:
        return (ConfigMapTranslator, SecretTranslator, PriorityClassTranslator, NodeTranslator)

    def triggers(self) -> Sequence[Trigger]:
        """Host pods carry their namespace's labels (for namespace selectors): follow them."""
        return (Trigger(Side.VIRTUAL, resources.NAMESPACES, _whole_namespace),)

    def reads(self) -> Sequence[tuple[Side, resources.Resource]]:
        """Host caches of classes shown from the host are read too, but not declared: their
        own translators make them, with the selectors that pick the classes shown."""
        return (
            (Side.VIRTUAL, resources.SERVICES),
            (Side.VIRTUAL, resources.NAMESPACES),
            (Side.VIRTUAL, resources.STORAGECLASSES),
            (Side.HOST, resources.SERVICES),
        )

    # -- the world a pod is translated in --------------------------------------

    def _dns_ip(self, ctx: Context) -> str | None:
        name, namespace = naming.DNS_SERVICE
        key = f"{ctx.host_namespace}/{naming.host_name(name, namespace, ctx.vcluster)}"
        service = ctx.lookup.get(Side.HOST, resources.SERVICES, key)
        ip = (service or {}).get("spec", {}).get("clusterIP")
        return ip if ip and ip != "None" else None

    def world(self, virtual: Obj, ctx: Context, dns_ip: str) -> podspec.PodWorld:
        namespace = virtual["metadata"]["namespace"]
        ns = ctx.lookup.get(Side.VIRTUAL, resources.NAMESPACES, namespace) or {}
        spec = virtual.get("spec") or {}
        return podspec.PodWorld(
            vcluster=ctx.vcluster,
            host_namespace=ctx.host_namespace,
            api_service_ip=ctx.facts.api_service_ip,
            dns_ip=dns_ip,
            services=tuple(ctx.lookup.in_namespace(Side.VIRTUAL, resources.SERVICES, namespace)),
            namespace_labels=ns.get("metadata", {}).get("labels") or {},
            priority_class=policy.host_priority_class(spec, ctx),
            runtime_class=ctx.facts.policy.runtime_class,
            token_secret=token_secret_name(virtual),
        )

    # -- the three cases ---------------------------------------------------------

    def to_host(self, virtual: Obj, ctx: Context) -> list[Action]:
        name, namespace, uid = _meta(virtual)
        if virtual["metadata"].get("deletionTimestamp") or _ran(virtual):
            return [Delete(Side.VIRTUAL, self.resource, name, namespace, uid, grace_period=0)]
        violations = pss.check(virtual, ctx.facts.pod_security_standard)
        if violations:
            level = ctx.facts.pod_security_standard
            return [Warn("PodSecurityViolation", pss.message(violations, level))]
        refusal = policy.pod_refusal(virtual, ctx)
        if refusal:
            return refusal
        ambiguous = ambiguous_names(_referenced_names(virtual), namespace, ctx)
        if ambiguous:
            return [name_conflict("objects", ambiguous)]
        dns_ip = self._dns_ip(ctx)
        if dns_ip is None:
            return [Requeue(_DNS_RETRY)]  # the DNS Service is synced first; wait for it
        actions: list[Action] = [
            EnsureSynced(ConfigMapTranslator, key) for key in references.configmap_keys(virtual)
        ]
        actions += [EnsureSynced(SecretTranslator, key) for key in references.secret_keys(virtual)]
        actions += [EnsureSynced(PriorityClassTranslator, name)
                    for name in _synced_class(virtual, ctx)]
        # The token Secret follows in the first sync, owned by the new host pod
        # (one write; a real kubelet waits the few milliseconds for it).
        world = self.world(virtual, ctx, dns_ip)
        pod = podspec.host_pod(virtual, world)
        too_large = _too_large(virtual, pod, world)
        if too_large is not None:
            return [too_large, Requeue(_TOO_LARGE_RETRY)]
        actions.append(Create(Side.HOST, self.host, pod))
        return actions

    def sync(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]:
        name, namespace, _ = _meta(virtual)
        host_name, host_ns, host_uid = _meta(host)
        if virtual["metadata"].get("deletionTimestamp"):
            if host["metadata"].get("deletionTimestamp"):
                return []
            grace = virtual["metadata"].get("deletionGracePeriodSeconds")
            return [Delete(Side.HOST, self.host, host_name, host_ns, host_uid, grace_period=grace)]
        actions: list[Action] = []
        node = host.get("spec", {}).get("nodeName")
        if node and not virtual.get("spec", {}).get("nodeName"):
            actions += [EnsureSynced(NodeTranslator, node), Create(
                Side.VIRTUAL, self.resource, _binding(name, namespace, node),
                subresource="binding", name=name,
            )]
        status = podspec.status_patch(virtual, host)
        if status:
            actions.append(Patch(Side.VIRTUAL, self.resource, name, namespace, status, "status"))
        world = self.world(virtual, ctx, self._dns_ip(ctx) or "")
        spec = podspec.spec_patch(virtual, host, world)
        if spec:
            actions.append(Patch(Side.HOST, self.host, host_name, host_ns, spec,
                                 patch_type="strategic"))
        debug = podspec.ephemeral_containers_patch(virtual, host, world)
        if debug:
            actions.append(self._debug(virtual, ctx, Patch(
                Side.HOST, self.host, host_name, host_ns, debug, "ephemeralcontainers",
                patch_type="strategic")))
        if podspec.token_requests(virtual):
            actions.append(self._tokens(virtual, ctx, host))
        return actions

    def _debug(self, virtual: Obj, ctx: Context, patch: Patch) -> Action:
        """Added ephemeral containers go down only if the pod still meets the level: the
        check at creation saw none of them (``kubectl debug --profile=sysadmin`` adds a
        privileged one)."""
        level = ctx.facts.pod_security_standard
        violations = pss.check(virtual, level)
        return Warn("PodSecurityViolation", pss.message(violations, level)) if violations else patch

    def _tokens(self, virtual: Obj, ctx: Context, host: Obj) -> IssueTokens:
        name, namespace, uid = _meta(virtual)
        identity = naming.VirtualIdentity(name, namespace, uid, "Pod")
        meta = {
            "name": token_secret_name(virtual),
            "namespace": ctx.host_namespace,
            "labels": naming.host_labels({}, ctx.vcluster, namespace),
            "annotations": naming.host_annotations({}, identity),
        }
        host_name, _, host_uid = _meta(host)
        owner = {"apiVersion": "v1", "kind": "Pod", "name": host_name, "uid": host_uid}
        service_account = virtual.get("spec", {}).get("serviceAccountName") or "default"
        return IssueTokens(meta, namespace, service_account, name, uid,
                           podspec.token_requests(virtual), owner)


def _referenced_names(virtual: Obj) -> set[str]:
    """Every ConfigMap, Secret and claim the host pod will name (renamed to host names)."""
    return (references.configmap_names(virtual) | references.secret_names(virtual)
            | references.claim_names(virtual))


def _synced_class(virtual: Obj, ctx: Context) -> list[str]:
    """The PriorityClass whose host copy the host pod names: host admission refuses the
    pod until that copy exists (``podspec`` leaves ``system-*`` classes out)."""
    name = (virtual.get("spec") or {}).get("priorityClassName")
    if not name or not policy.syncs_priority_classes(ctx) or name.startswith("system-"):
        return []
    return [str(name)]


def _too_large(virtual: Obj, pod: Obj, world: podspec.PodWorld) -> Warn | None:
    """A Warning if the host pod cannot be stored on the host, saying what made it big.

    The kubelet computes service-link variables when it starts a container; the
    syncer has to write them into the host pod's spec, once per container. With
    many Services in a namespace that alone can exceed what the host stores, and
    the host would only answer "request entity too large" on every retry.
    """
    size = len(orjson.dumps(pod))
    if size <= MAX_HOST_POD_BYTES:
        return None
    unlinked = podspec.host_pod(virtual, dataclasses.replace(world, services=()))
    links = size - len(orjson.dumps(unlinked))
    containers = sum(len((virtual.get("spec") or {}).get(f) or ()) for f in
                     ("initContainers", "containers"))
    cause = (
        f"{links / _MiB:.1f} MiB of it are the service-link variables of the "
        f"{len(world.services)} Services of this namespace, which are written into each of "
        f"its {containers} containers: set spec.enableServiceLinks to false"
        if links > size - MAX_HOST_POD_BYTES else "make the pod smaller"
    )
    return Warn(POD_TOO_LARGE, (
        f"not synced: the pod would take {size / _MiB:.1f} MiB in the host cluster, which "
        f"stores at most {MAX_HOST_POD_BYTES / _MiB:.1f} MiB per object; {cause}"))


def _whole_namespace(namespace: Obj) -> list[str]:
    return [f"{namespace['metadata']['name']}/{ALL_IN_NAMESPACE}"]


def _binding(name: str, namespace: str, node: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": namespace},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }
