"""The syncer's configuration, read from the same keys as the vCluster Helm values.

Why the Helm keys: the chart renders the ``sync`` and ``policies`` parts of its
values into the file this module reads, so a user configures vcsync exactly as
they would configure vCluster, and there is one source of truth. The
``syncer`` section is vcsync's own tuning (client rate limits, work queue
size, leader election) and has no vCluster counterpart.

Why frozen dataclasses with a generic reader: the rest of the syncer gets
typed attributes (``cfg.syncer.host.qps``) that cannot change under it, and
adding a key is one line here: the reader derives YAML keys (camelCase) from
field names (snake_case) and value checks from type hints. The ``sync``
sections are the kinds' own declarations (:class:`Kinds`): a kind brings its
key, default and options shape with it.

Merging follows Helm: a partial section overrides only the keys it names, the
rest keep their defaults (``ingresses: {}`` stays disabled). Unknown keys are
errors, never ignored, because a typo (``enabld``) would otherwise silently
leave a default in force. Every error is a :class:`ConfigError` naming the
dotted key path.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar, get_origin, get_type_hints

import yaml

from contract import discovery
from contract.options import Toggle
from contract.resources import Direction
from syncer import strvals
from syncer.yamlread import ConfigLoader, position

__all__ = [
    "AllowList",
    "ConfigError",
    "Kinds",
    "LeaderElection",
    "PodSecurityStandard",
    "Policies",
    "PriorityClassPolicy",
    "RateLimit",
    "Sync",
    "SyncerConfig",
    "Tuning",
    "apply_set",
    "load",
    "parse",
    "to_dict",
]


class ConfigError(ValueError):
    """A configuration problem, reported as ``<dotted.key.path>: <what is wrong>``.

    ``path`` and ``problem`` are kept apart so that a section can prefix the
    path of an error raised by one of its children.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or 'top level'}: {problem}")
        self.path = path
        self.problem = problem


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<=": operator.le,
}


def _bound(comparison: str, limit: float) -> dict[str, tuple[str, float]]:
    """Field metadata: the value must satisfy ``value <comparison> limit``."""
    return {"bound": (comparison, limit)}


class _Section:
    """Base of every configuration dataclass: checks the ``_bound`` metadata.

    Checking in ``__post_init__`` (not only while parsing) keeps the invariants
    for objects built in code or with ``dataclasses.replace`` too.
    """

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    CHART_ONLY_KEYS: ClassVar[frozenset[str]] = frozenset()
    """Keys accepted (if mappings) and dropped: they configure the chart, not the syncer."""

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            if "bound" not in spec.metadata:
                continue
            comparison, limit = spec.metadata["bound"]
            value = getattr(self, spec.name)
            if not _COMPARISONS[comparison](value, limit):
                raise ConfigError(
                    _camel(spec.name), f"must be {comparison} {limit:g}, got {value!r}"
                )


# --- sync: the kinds, as they declare themselves (contract.translator.Translator) ---


_T = TypeVar("_T", bound=Toggle)


class Kinds(Mapping[str, Toggle]):
    """``sync.toHost`` or ``sync.fromHost``: each built-in kind's section, by its key.

    Why not a dataclass of fields: the keys, their shapes
    (:mod:`contract.options`) and defaults are the kinds' own declarations, so
    a new kind needs no line here (and no line in the chart's schema, which is
    derived the same way).
    """

    def __init__(self, direction: Direction, sections: Mapping[str, Toggle]) -> None:
        self.direction = direction
        self._sections = dict(sections)

    @classmethod
    def defaults(cls, direction: Direction) -> Kinds:
        return cls(direction, {
            key: kind.options_type(enabled=kind.enabled_by_default)
            for key, kind in sorted(discovery.builtin_keys(direction).items())
        })

    def __getitem__(self, key: str) -> Toggle:
        return self._sections[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sections)

    def __len__(self) -> int:
        return len(self._sections)

    def __repr__(self) -> str:
        return f"Kinds({self.direction.value}, {self._sections!r})"

    def section(self, key: str, shape: type[_T]) -> _T:
        """The section of ``key`` typed as its declared shape (``PodOptions`` for pods)."""
        found = self._sections[key]
        if not isinstance(found, shape):
            raise TypeError(f"sync.{self.direction.value}.{key} is a {type(found).__name__}")
        return found

    def merged(self, data: object, path: str) -> Kinds:
        given = _mapping(data, path)
        for key in given:
            if key not in self._sections:
                raise ConfigError(_join(path, key), f"unknown key; allowed: {', '.join(self)}")
        return Kinds(self.direction, {
            key: _merge(current, given[key], _join(path, key)) if key in given else current
            for key, current in self._sections.items()
        })


@dataclass(frozen=True)
class Sync(_Section):
    """``sync``: which kinds are synced in each direction."""

    to_host: Kinds = field(default_factory=lambda: Kinds.defaults(Direction.TO_HOST))
    from_host: Kinds = field(default_factory=lambda: Kinds.defaults(Direction.FROM_HOST))

    def of(self, direction: Direction) -> Kinds:
        return self.to_host if direction is Direction.TO_HOST else self.from_host


# --- policies ---


class PodSecurityStandard(StrEnum):
    """Pod Security Standard level enforced on virtual pods before they reach the host."""

    PRIVILEGED = "privileged"
    BASELINE = "baseline"
    RESTRICTED = "restricted"


MAX_USER_PRIORITY = 1_000_000_000
"""The highest value a PriorityClass not named ``system-`` may have (the API server's rule)."""


@dataclass(frozen=True)
class PriorityClassPolicy(_Section):
    """``policies.priorityClasses``: what a synced tenant class may do to other tenants.

    Why these defaults: a host shares its nodes between tenants, and a class
    that preempts evicts whoever ranks lower, another tenant's pods included;
    capped at 0 a tenant class never outranks a pod without a class, and a
    platform class above 0 can still preempt tenant pods.
    """

    max_value: int = field(default=0, metadata=_bound("<=", MAX_USER_PRIORITY))
    allow_preemption: bool = False


@dataclass(frozen=True)
class AllowList(_Section):
    """Names (or, for ExternalName targets, glob patterns) the platform allows tenants."""

    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policies(_Section):
    """``policies``: what the syncer refuses to copy to the host; the rest is the chart's."""

    CHART_ONLY_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"resourceQuota", "limitRange", "networkPolicy"}
    )

    pod_security_standard: PodSecurityStandard = PodSecurityStandard.PRIVILEGED
    priority_classes: PriorityClassPolicy = field(default=PriorityClassPolicy())
    runtime_classes: AllowList = field(default=AllowList())
    schedulers: AllowList = field(default=AllowList())
    external_names: AllowList = field(default=AllowList())


# --- syncer: vcsync's own tuning ---


@dataclass(frozen=True)
class RateLimit(_Section):
    """Client-side token bucket towards one API server (client-go QPS/Burst)."""

    qps: float = field(default=50, metadata=_bound(">", 0))
    burst: int = field(default=100, metadata=_bound(">=", 1))


@dataclass(frozen=True)
class LeaderElection(_Section):
    """Lease-based leader election between syncer replicas (client-go semantics, seconds)."""

    enabled: bool = False
    lease_duration: float = 15
    renew_deadline: float = 10
    retry_period: float = field(default=2, metadata=_bound(">", 0))

    def __post_init__(self) -> None:
        """client-go's rule: a leader renews well before its lease expires, retrying in between."""
        super().__post_init__()
        if not self.renew_deadline > self.retry_period:
            raise ConfigError(
                "renewDeadline",
                f"must be > retryPeriod ({self.retry_period:g}), got {self.renew_deadline!r}",
            )
        if not self.lease_duration > self.renew_deadline:
            raise ConfigError(
                "leaseDuration",
                f"must be > renewDeadline ({self.renew_deadline:g}), got {self.lease_duration!r}",
            )


@dataclass(frozen=True)
class Tuning(_Section):
    """``syncer``: rate limits, work queue size and leader election of vcsync itself."""

    host: RateLimit = field(default=RateLimit())
    # The virtual API server serves this tenant alone and the syncer makes about four
    # requests there per synced pod (TokenRequest, binding, status, event copy): 300 QPS
    # keeps 75 pods/s from waiting on the bucket (vcsync bench load: at 100 the syncer
    # arm trailed the direct arm to Ready; at 300 it matched it).
    virtual: RateLimit = field(default=RateLimit(qps=300, burst=600))
    shards: int = field(default=8, metadata=_bound(">=", 1))
    workers_per_shard: int = field(default=4, metadata=_bound(">=", 1))
    leader_election: LeaderElection = field(default=LeaderElection())


PluginSections = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class SyncerConfig(_Section):
    """The whole configuration; ``SyncerConfig()`` is the defaults."""

    sync: Sync = field(default=Sync())
    policies: Policies = field(default=Policies())
    syncer: Tuning = field(default=Tuning())
    plugins: PluginSections = field(default_factory=lambda: MappingProxyType({}))
    """Third-party translators' sections by kind (``plugins.<kind>.enabled`` ...).

    Kept apart from ``sync`` so that a typo there is still an unknown key;
    the syncer checks these kinds against the installed translators."""

    def __post_init__(self) -> None:
        """PriorityClasses go one way only (as in vCluster): with both, a tenant's class and
        a host class of one name would both claim the name the pods' classes resolve to."""
        super().__post_init__()
        if self.sync.to_host["priorityClasses"].enabled and (
                self.sync.from_host["priorityClasses"].enabled):
            raise ConfigError("sync.fromHost.priorityClasses.enabled",
                              "cannot be true together with sync.toHost.priorityClasses.enabled")


# --- public functions ---


def load(path: str | Path | None) -> SyncerConfig:
    """Read the configuration file at ``path``; ``None`` means all defaults."""
    return SyncerConfig() if path is None else parse(_read(Path(path)))


def parse(data: Mapping[str, Any] | None) -> SyncerConfig:
    """Validate already-loaded values (e.g. YAML after ``apply_set``) onto the defaults."""
    return _merge(SyncerConfig(), data, "")


def apply_set(data: Mapping[str, Any] | None, assignment: str) -> dict[str, Any]:
    """Return a copy of ``data`` with one ``--set`` argument applied, read as Helm reads it
    (:mod:`syncer.strvals`: ``a=1,b=2``, ``a[0].b=c``, ``a={x,y}``, ``\\`` escapes).

    A ``null`` removes the key so its default applies. Types are checked later, by
    :func:`parse`.
    """
    try:
        return _without_nulls(strvals.apply(data, assignment))
    except strvals.StrvalsError as exc:
        raise ConfigError(f"--set {assignment!r}", str(exc)) from exc


def _without_nulls(tree: dict[str, Any]) -> dict[str, Any]:
    return {key: _without_nulls(value) if isinstance(value, dict) else value
            for key, value in tree.items() if value is not None}


def to_dict(cfg: SyncerConfig) -> dict[str, Any]:
    """The full camelCase tree, defaults included: ``parse(to_dict(cfg)) == cfg``."""
    return _tree(cfg)


# --- generic reader and writer ---

_S = TypeVar("_S")


def _camel(name: str) -> str:
    """``persistent_volume_claims`` -> ``persistentVolumeClaims``."""
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _keys(cls: type[Any]) -> dict[str, tuple[str, Any]]:
    """YAML key -> (attribute name, type hint) for one section class."""
    hints = get_type_hints(cls)
    return {_camel(spec.name): (spec.name, hints[spec.name]) for spec in dataclasses.fields(cls)}


def _merge(current: _S, data: object, path: str) -> _S:
    """``current`` with the keys given in ``data`` replaced, each checked against its type."""
    given = _mapping(data, path)
    keys = _keys(type(current))
    chart_only: frozenset[str] = getattr(type(current), "CHART_ONLY_KEYS", frozenset())
    for key, value in given.items():
        if key in chart_only:
            _mapping(value, _join(path, key))
        elif key not in keys:
            allowed = ", ".join([*keys, *sorted(chart_only)])
            raise ConfigError(_join(path, key), f"unknown key; allowed: {allowed}")
    changes = {
        keys[key][0]: _value(keys[key][1], getattr(current, keys[key][0]), value, _join(path, key))
        for key, value in given.items()
        if key in keys
    }
    try:
        return dataclasses.replace(current, **changes)  # type: ignore[type-var]
    except ConfigError as err:
        raise ConfigError(_join(path, err.path), err.problem) from None


def _value(hint: Any, current: object, value: object, path: str) -> object:
    """Check (and convert) one value against the type hint of its field."""
    if isinstance(current, Kinds):
        return current.merged(value, path)
    if _is_section(current):
        return _merge(current, value, path)
    if hint == PluginSections:
        return _plugins(value, path)
    if get_origin(hint) is Mapping:
        return _labels(value, path)
    if get_origin(hint) is tuple:
        return _strings(value, path)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _choice(hint, value, path)
    return _SCALARS[hint](value, path)


def _mapping(value: object, path: str) -> Mapping[Any, Any]:
    """A mapping; ``null`` (a section whose keys are all commented out) counts as empty."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    raise ConfigError(path, f"expected a mapping, got {_show(value)}")


def _labels(value: object, path: str) -> Mapping[str, str]:
    labels = _mapping(value, path)
    for key, text in labels.items():
        if not isinstance(key, str):
            raise ConfigError(path, f"label key {key!r} is not a string")
        if not isinstance(text, str):
            raise ConfigError(_join(path, key), f"expected a string, got {_show(text)}")
    return MappingProxyType(dict(labels))


def _strings(value: object, path: str) -> tuple[str, ...]:
    """A list of strings (``null``: none), kept as a tuple so the section stays frozen."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(path, f"expected a list of strings, got {_show(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{path}[{index}]", f"expected a non-empty string, got {_show(item)}")
    return tuple(value)


def _plugins(value: object, path: str) -> PluginSections:
    """Free-form sections, except that ``enabled`` (when given) must be a boolean."""
    sections = {}
    for kind, section in _mapping(value, path).items():
        options = dict(_mapping(section, _join(path, kind)))
        if "enabled" in options:
            _boolean(options["enabled"], _join(_join(path, kind), "enabled"))
        sections[str(kind)] = MappingProxyType(options)
    return MappingProxyType(sections)


def _choice(enum: type[Enum], value: object, path: str) -> Enum:
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(str(member.value) for member in enum)
        raise ConfigError(path, f"{_show(value)} is not one of {choices}") from None


def _boolean(value: object, path: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(path, f"expected true or false, got {_show(value)}")


def _string(value: object, path: str) -> str:
    if isinstance(value, str):
        return value
    raise ConfigError(path, f"expected a string, got {_show(value)}")


def _integer(value: object, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ConfigError(path, f"expected an integer, got {_show(value)}")


def _number(value: object, path: str) -> float:
    """An int or a finite float (``.inf`` and ``.nan`` would defeat every range check)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise ConfigError(path, f"expected a finite number, got {_show(value)}")


_SCALARS: dict[Any, Callable[[object, str], object]] = {
    str: _string,
    bool: _boolean,
    int: _integer,
    float: _number,
}


def _is_section(value: object) -> bool:
    """A configuration section: a dataclass instance (ours, or a kind's options shape)."""
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _tree(section: Any) -> dict[str, Any]:
    return {
        _camel(spec.name): _plain(getattr(section, spec.name))
        for spec in dataclasses.fields(section)
    }


def _plain(value: object) -> object:
    if _is_section(value):
        return _tree(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return list(value)
    return value


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _show(value: object) -> str:
    """A value as the user wrote it (in YAML terms), kept short for containers."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else repr(value)


# --- YAML ---


def _read(path: Path) -> Mapping[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(str(path), f"cannot read: {err}") from err
    try:
        document = yaml.load(text, Loader=ConfigLoader)
    except yaml.YAMLError as err:
        raise _yaml_error(path, err) from err
    if document is None or isinstance(document, Mapping):
        return document
    raise ConfigError(str(path), f"expected a mapping at the top level, got {_show(document)}")


def _yaml_error(path: Path, err: yaml.YAMLError) -> ConfigError:
    found = position(err)
    return ConfigError(str(path), f"invalid YAML at {found}" if found else f"invalid YAML: {err}")
