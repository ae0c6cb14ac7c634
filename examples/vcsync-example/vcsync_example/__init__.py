"""vcsync-example: the smallest complete third-party kind (docs/plugins.md explains it).

Widgets (``example.com/v1``) of the virtual cluster are copied into the host
namespace under the usual host names and ownership metadata, and never
patched. ``pyproject.toml`` beside this package registers the class in the
entry-point group ``vcsync.translators``; ``plugins.examples.enabled: true``
switches it on.
"""

from __future__ import annotations

from typing import Any

from contract.resources import Resource
from contract.translator import Action, Context, Create, Side, Translator
from translators.objects import host_metadata

WIDGETS = Resource("example.com", "v1", "widgets", "Widget")


class ExampleTranslator(Translator):
    """Copies Widgets to the host namespace; never patches them."""

    kind = "examples"
    summary = "Copy Widgets (example.com/v1) into the host namespace."
    resource = WIDGETS

    def to_host(self, virtual: dict[str, Any], ctx: Context) -> list[Action]:
        obj = {
            "apiVersion": WIDGETS.api_version,
            "kind": WIDGETS.kind,
            "metadata": host_metadata(virtual, ctx, WIDGETS.kind),
            "spec": virtual.get("spec", {}),
        }
        return [Create(Side.HOST, self.host, obj)]

    def sync(self, virtual: dict[str, Any], host: dict[str, Any], ctx: Context) -> list[Action]:
        return []
