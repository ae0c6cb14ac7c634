"""How a third party writes and registers a vcsync translator.

A translator handles one kind. It knows nothing about HTTP, queues or clocks:
the engine reads both caches and calls exactly one of three pure methods per
reconcile, and executes the actions it returns, in order:

- ``to_host(virtual, ctx)``: only the virtual object exists; typically one
  :class:`~contract.translator.Create` of the host copy;
- ``sync(virtual, host, ctx)``: both exist; the minimal
  :class:`~contract.translator.Patch` actions, or ``[]`` when the host copy
  already matches (an idle sync must write nothing);
- ``to_virtual(host, ctx)``: only the host copy exists; the default deletes
  the orphan (with a uid precondition).

Rules every translator keeps: never mutate the inputs (cached objects are
shared; build new dicts), never name a host namespace other than
``ctx.host_namespace``, and put the ownership metadata on every host object
(:func:`translators.objects.host_metadata` builds it: the managed-by label is
required, the writer refuses to create a host object without it).

1. Write the translator: subclass :class:`contract.translator.Translator`, set
   ``kind`` (the configuration key), ``resource`` (a
   :class:`contract.resources.Resource` describing the API resource) and
   implement ``to_host`` and ``sync``; override ``wants``, ``indexes``,
   ``triggers`` or ``to_virtual`` when needed. Options come from the kind's
   configuration section as ``self.options``. Do *not* use
   :func:`contract.translator.register`: it is for built-in translators.

2. Register it through the entry-point group ``vcsync.translators`` in the
   plugin package's ``pyproject.toml``; the name is free, the value names the
   class::

       [project.entry-points."vcsync.translators"]
       examples = "mypkg.translators:ExampleTranslator"

   Install the package next to vcsync; :func:`contract.translator.available`
   then lists it by its ``kind`` (an entry point that is not a
   ``Translator`` subclass makes it raise ``TypeError``).

3. Enable it in the syncer configuration under ``plugins.<kind>``; the
   whole section is passed to the constructor as ``options``::

       plugins:
         examples:
           enabled: true
           colour: blue      # any option of the plugin's own

   A kind without a section, or with ``enabled: false``, is not started; a
   ``plugins`` kind that no installed translator has stops ``vcsync run``
   with a configuration error (a typo must not silently sync nothing).

The class below is the smallest complete translator; the unit tests in
``tests/unit/test_registry.py`` register it through a temporary
``*.dist-info`` directory exactly as an installed package would.
"""

from __future__ import annotations

from typing import Any

from contract.resources import Resource
from contract.translator import Action, Context, Create, Side, Translator
from translators.objects import host_metadata

WIDGETS = Resource("example.com", "v1", "widgets", "Widget")

NOT_A_TRANSLATOR = "an entry point naming this object must be rejected"
"""Target of the tests' invalid entry point (a plain value, not a Translator subclass)."""


class ExampleTranslator(Translator):
    """Copies Widgets to the host namespace; never patches them."""

    kind = "examples"
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
