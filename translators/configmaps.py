"""ConfigMaps: virtual -> host, while referenced by a pod (or all with ``all: true``)."""

from __future__ import annotations

from typing import Any

from syncer.kube import resources
from translators import references
from translators.base import register
from translators.referenced import ReferencedTranslator


@register
class ConfigMapTranslator(ReferencedTranslator):
    kind = "configMaps"
    resource = resources.CONFIGMAPS
    index = "configmap-refs"
    data_fields = ("data", "binaryData", "immutable")

    def references(self, pod: dict[str, Any]) -> list[str]:
        return references.configmap_keys(pod)
