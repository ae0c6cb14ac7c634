"""The local host's kubelet simulation: what kwok answers for logs, exec, attach, port-forward
and resource metrics.

kwok v0.8.0 serves the kubelet API of its fake pods from its own server
(``--node-port`` makes the nodes point there). What it answers comes from its
simulation objects; the local host configures:

- ``ClusterLogs`` and ``ClusterAttach`` for every pod: a log file under the host's
  directory (:func:`default_log_lines`, CRI log format);
- ``ClusterExec`` for every pod: the command runs **on this machine**, as a
  child of kwok (so as the user who created the host), in a scratch directory
  of the host (``<root>/kwok/exec``). This is a simulation for testing the
  paths, not isolation: whoever may exec into a pod of the local host runs
  commands here as that user;
- the namespaced kinds ``Logs``, ``Exec``, ``Attach`` and ``PortForward`` as
  CRDs (``--enable-crds``), so a test or a user can give one host pod its own
  log file or forward its ports to a loopback port of their choosing;
- kwok's own ``Metric`` serving ``/metrics/nodes/{node}/metrics/resource`` (what
  metrics-server scrapes; the nodes name that path in their
  ``metrics.k8s.io/resource-metrics-path`` annotation) and its
  ``ClusterResourceUsage`` that reads a pod's usage from its annotations
  :data:`USAGE_CPU` and :data:`USAGE_MEMORY` (default 1m and 1Mi per container), so
  ``kubectl top`` shows figures a test or a user chose.

kwok never closes a command's stdin (its pipe is closed only when the
command exits), so a command that reads stdin to its end waits forever.
``kubectl cp`` into a pod runs ``tar -x`` reading stdin: a ``tar`` shim first
on kwok's PATH (:data:`TAR_SHIM`) stops reading at the archive's end marker
and hands the archive to the real tar.
"""

from __future__ import annotations

import datetime
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from syncer.local import binaries

API_VERSION = "kwok.x-k8s.io/v1alpha1"
CRD_KINDS = ("Logs", "Exec", "Attach", "PortForward")
"""Namespaced simulation kinds served as CRDs (a per-pod override of the cluster rules)."""
USAGE_CPU = "kwok.x-k8s.io/usage-cpu"
USAGE_MEMORY = "kwok.x-k8s.io/usage-memory"
"""Pod annotations (quantities) with the usage kwok reports for each container of the pod."""

TAR_SHIM = '''#!{python}
"""tar for kwok's simulated exec: extraction from stdin stops at the end-of-archive marker.

kwok never closes a command's stdin, so the real tar would wait for an EOF that
never comes. This reads the archive block by block, stops after the two zero
blocks that end it, and gives the real tar the archive with a proper end.
"""
import os
import subprocess
import sys

REAL = {real!r}
BLOCK = 512


def _read(n):
    data = b""
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _archive():
    parts = []
    while True:
        header = _read(BLOCK)
        parts.append(header)
        if len(header) < BLOCK:
            return b"".join(parts)
        if header == bytes(BLOCK):
            parts.append(_read(BLOCK))
            return b"".join(parts)
        size = int(header[124:136].rstrip(b"\\0 ") or b"0", 8)
        parts.append(_read((size + BLOCK - 1) // BLOCK * BLOCK))


def _extracts_stdin(args):
    extract = any(a == "--extract" or (a.startswith("-") and not a.startswith("--") and "x" in a)
                  for a in args) or (bool(args) and not args[0].startswith("-") and "x" in args[0])
    return extract and "-" in args


def main():
    args = sys.argv[1:]
    if not _extracts_stdin(args):
        os.execv(REAL, [REAL, *args])
    archive = _archive()
    sys.exit(subprocess.run([REAL, *args], input=archive).returncode)


main()
'''


def default_log_lines(now: datetime.datetime | None = None) -> list[str]:
    """The log every pod of the local host shows, in the CRI log format kwok reads."""
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    messages = (
        "vcsync local host: this pod runs on a kwok node; no container really runs",
        "its log is the file kwok serves for every pod (give one pod its own with a Logs object)",
    )
    return [f"{stamp} stdout F {message}" for message in messages]


def _object(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


def simulation(root: Path) -> list[dict[str, Any]]:
    """The cluster-wide simulation objects of a host whose kwok files live under ``root``."""
    log_file = str(root / "logs" / "pods.log")
    local = {"workDir": str(root / "exec")}
    return [
        _object("ClusterLogs", "vcsync-default", {"logs": [{"logsFile": log_file}]}),
        _object("ClusterAttach", "vcsync-default", {"attaches": [{"logsFile": log_file}]}),
        _object("ClusterExec", "vcsync-default", {"execs": [{"local": local}]}),
    ]


def prepare(root: Path) -> Path:
    """Write kwok's config (its stages, resource metrics and :func:`simulation`), the default
    log, the scratch directory and the tar shim under ``root``; return the config file."""
    for sub in ("logs", "exec", "bin"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "logs" / "pods.log").write_text("\n".join(default_log_lines()) + "\n")
    real = shutil.which("tar") or "/bin/tar"
    shim = root / "bin" / "tar"
    shim.write_text(TAR_SHIM.format(python=sys.executable, real=real))
    shim.chmod(0o755)
    config = root / "kwok.yaml"
    from_module = [binaries.kwok_stages_path().read_text(),
                   binaries.kwok_metrics_path().read_text()]
    config.write_text("\n---\n".join([*from_module, yaml.safe_dump_all(simulation(root))]))
    return config


def environment(root: Path) -> dict[str, str]:
    """kwok's environment: the shim directory first on its PATH."""
    return {"PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}"}


def crds() -> list[dict[str, Any]]:
    """The CRDs of :data:`CRD_KINDS`, from the kwok module (cached by ``make binaries``)."""
    docs = yaml.safe_load_all(binaries.kwok_crds_path().read_text())
    wanted = set(CRD_KINDS)
    return [d for d in docs if d and d["spec"]["names"]["kind"] in wanted]
