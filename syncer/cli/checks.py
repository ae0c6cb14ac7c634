"""Preconditions every create command checks before it starts anything.

Why up front: a command that fails half-way must clean up after itself;
one that fails before starting anything has nothing to clean up, and its
message can say exactly what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from syncer.cli.errors import CliError
from syncer.local import binaries

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
SUPPORTED_VERSIONS = (binaries.KUBERNETES_VERSION, binaries.SKEW_KUBERNETES_VERSION)


def dns_label(value: str, what: str, max_length: int = 63) -> str:
    """``value`` if it is a valid DNS-1123 label of at most ``max_length`` characters."""
    if len(value) > max_length or not _DNS_LABEL.fullmatch(value):
        raise CliError(
            f"invalid {what} {value!r}: use at most {max_length} lowercase letters, digits "
            "and '-', starting and ending with a letter or digit")
    return value


def kubernetes_version(version: str) -> str:
    if version not in SUPPORTED_VERSIONS:
        raise CliError(f"unsupported Kubernetes version {version!r}; this build supports "
                       f"{', '.join(SUPPORTED_VERSIONS)}")
    return version


def built(components: Iterable[str], version: str) -> None:
    """Every binary is in the cache, else say how to build it."""
    missing = []
    for component in components:
        try:
            binaries.binary_path(component, version if component.startswith("kube") else None)
        except binaries.BinaryMissing:
            missing.append(component)
    if missing:
        skew = " --skew" if version != binaries.KUBERNETES_VERSION else ""
        raise CliError(
            f"missing binaries for Kubernetes {version}: {', '.join(missing)}; build them with "
            f"`make binaries` or `python -m syncer.local.binaries{skew}`")
