"""ConfigMaps: virtual -> host, while referenced by a pod (or all with ``all: true``)."""

from __future__ import annotations

from typing import Any

from contract import resources
from translators import references
from translators.referenced import ReferencedTranslator


class ConfigMapTranslator(ReferencedTranslator):
    kind = "configMaps"
    summary = "Sync ConfigMaps that synced pods reference."
    resource = resources.CONFIGMAPS
    index = "configmap-refs"
    data_fields = ("data", "binaryData", "immutable")

    def references(self, pod: dict[str, Any]) -> list[str]:
        return references.configmap_keys(pod)
