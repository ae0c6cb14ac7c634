"""Secrets: virtual -> host, while referenced by a pod (or all with ``all: true``).

Service-account token Secrets go to the host as ``Opaque``: with their
original type the host's token controller would treat them as its own
(and fill or delete them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contract import resources
from contract.resources import Resource
from contract.translator import Context, IndexFunc
from translators import references
from translators.referenced import ReferencedTranslator

_SA_TOKEN = "kubernetes.io/service-account-token"


class SecretTranslator(ReferencedTranslator):
    kind = "secrets"
    summary = "Sync Secrets that synced pods (or Ingresses) reference."
    resource = resources.SECRETS
    index = "secret-refs"
    data_fields = ("data", "type", "immutable")

    def references(self, pod: dict[str, Any]) -> list[str]:
        return references.secret_keys(pod)

    def referrers(self) -> Sequence[tuple[Resource, str, IndexFunc]]:
        """Pods, and Ingresses for their TLS Secrets (scenario 31)."""
        return (
            *super().referrers(),
            (resources.INGRESSES, "ingress-tls-refs", references.ingress_tls_secret_keys),
        )

    def desired(self, virtual: dict[str, Any], ctx: Context) -> dict[str, Any]:
        obj = super().desired(virtual, ctx)
        if obj.get("type") == _SA_TOKEN:
            obj["type"] = "Opaque"
        return obj
