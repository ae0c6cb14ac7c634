"""Finding the kinds: built-in translators and entry-point plugins, one way.

Built-ins are the concrete :class:`~contract.translator.Translator` subclasses
defined in the modules of the ``translators`` package (so adding a kind is
adding a module); third-party kinds are the classes named by the entry-point
group ``vcsync.translators``. Both are checked the same way (a kind, a
resource, declared ensures among the kinds found), so a plugin cannot be
half-declared where a built-in could not. The package is named as data:
this module imports nothing of ``translators`` statically, so the contract
stays below both layers.

Built-ins are configured under ``sync.<direction>.<key>``, plugins under
``plugins.<kind>`` (a typo under ``sync`` stays an unknown key).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any, TypeGuard

from contract.resources import Direction
from contract.translator import Translator

ENTRY_POINT_GROUP = "vcsync.translators"
BUILTIN_PACKAGE = "translators"


class DeclarationError(TypeError):
    """A translator class or entry point that does not declare a usable kind."""


@functools.cache
def builtins() -> Mapping[str, type[Translator]]:
    """The built-in kinds by name (the package does not change while the process runs)."""
    package = importlib.import_module(BUILTIN_PACKAGE)
    found: dict[str, type[Translator]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{BUILTIN_PACKAGE}.{info.name}")
        for _, member in inspect.getmembers(module, inspect.isclass):
            if member.__module__ == module.__name__ and _is_kind(member):
                _add(found, member, f"{module.__name__}.{member.__name__}")
    return found


def plugins() -> dict[str, type[Translator]]:
    """Every ``vcsync.translators`` entry point, by kind (read afresh: installs change)."""
    found: dict[str, type[Translator]] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        cls = entry.load()
        if not (isinstance(cls, type) and issubclass(cls, Translator)):
            raise DeclarationError(f"entry point {entry.name!r} is not a Translator subclass")
        _add(found, cls, f"entry point {entry.name!r}")
    return found


def available() -> dict[str, type[Translator]]:
    """Built-in and plugin kinds; a plugin may not take a built-in kind's name."""
    found = dict(builtins())
    for kind, cls in plugins().items():
        if kind in found and found[kind] is not cls:
            raise DeclarationError(f"plugin kind {kind!r} is a built-in kind")
        found[kind] = cls
    _check_ensures(found.values())
    return found


def _is_kind(cls: type) -> TypeGuard[type[Translator]]:
    """A concrete translator that names its kind (bases such as ``ClassTranslator`` do not)."""
    return issubclass(cls, Translator) and not inspect.isabstract(cls) and "kind" in vars(cls)


def _add(found: dict[str, type[Translator]], cls: type[Translator], where: str) -> None:
    if not isinstance(getattr(cls, "kind", None), str) or not hasattr(cls, "resource"):
        raise DeclarationError(f"{where}: a translator must declare kind and resource")
    if cls.kind in found and found[cls.kind] is not cls:
        raise DeclarationError(f"{where}: kind {cls.kind!r} is declared twice")
    found[cls.kind] = cls


def _check_ensures(classes: Iterable[type[Translator]]) -> None:
    known = set(classes)
    for cls in known:
        for target in cls.ensures():
            if target not in known:
                raise DeclarationError(
                    f"{cls.kind}: ensures {target.__name__}, which is not an available kind")


def builtin_keys(direction: Direction) -> dict[str, type[Translator]]:
    """Built-in kinds of one direction by configuration key (``sync.<direction>.<key>``)."""
    return {cls.config_key(): cls for cls in builtins().values() if cls.direction is direction}


def sections(
    sync: Mapping[str, Mapping[str, Mapping[str, Any]]],
    plugin_sections: Mapping[str, Mapping[str, Any]], classes: Mapping[str, type[Translator]],
) -> dict[str, Mapping[str, Any]]:
    """Each kind's options: ``plugins.<kind>``, else its section under ``sync.<direction>``
    (``sync`` as configured: ``{"toHost": {...}, "fromHost": {...}}``)."""
    found = {
        kind: sync[cls.direction.value][cls.config_key()]
        for kind, cls in classes.items()
        if cls.config_key() in sync.get(cls.direction.value, {})
    }
    return {**found, **plugin_sections}


def enabled(
    sections: Mapping[str, Mapping[str, Any]], classes: Mapping[str, type[Translator]]
) -> list[Translator]:
    """Instantiate the translators whose config section says ``enabled: true``.

    ``sections`` maps a kind to its options (``sync.toHost.configMaps`` ...,
    and ``plugins.<kind>`` for third-party kinds; see :func:`sections`). A kind
    without a section is off.
    """
    return [
        cls(sections[kind])
        for kind, cls in sorted(classes.items())
        if sections.get(kind, {}).get("enabled", False)
    ]
