"""Build and locate the real Kubernetes components vcsync runs locally.

Why build at all: no registry reachable here ships kube-apiserver, so every
component is compiled from its Go module, pinned below, and cached *outside*
the repository (``$VCSYNC_CACHE`` or ``~/.cache/vcsync``) keyed by component
and version. A second run finds every binary and builds nothing.

This module is deliberately stdlib-only: ``make`` runs it before any virtual
environment exists (``python3 -m syncer.local.binaries``).

Invariant: a binary path returned by :func:`binary_path` either exists and was
produced by a build that exited 0 (it is moved into place atomically), or the
call raises :class:`BinaryMissing`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.36.3"
SKEW_KUBERNETES_VERSION = "v1.35.4"
ETCD_VERSION = "v3.6.16"
KINE_VERSION = "v0.16.4"  # v0.16.5 needs an unpublished t4 module, v0.16.6 needs go >= 1.26.10
KWOK_VERSION = "v0.8.0"
HELM_VERSION = "v3.22.0"
METRICS_SERVER_VERSION = "v0.8.0"
GINKGO_VERSION = "v2.28.1"
"""The Ginkgo CLI that runs e2e.test in parallel: the version k8s.io/kubernetes
KUBERNETES_VERSION requires (its go.mod), so CLI and suite speak the same protocol."""
E2E_PACKAGE = "k8s.io/kubernetes/test/e2e"

KUBE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
KWOK_KUSTOMIZATIONS = {
    "stages": ("stage/node/fast", "stage/node/heartbeat-with-lease", "stage/pod/fast"),
    "metrics": ("metrics/usage",),
}
"""kwok's configuration files taken from its module: the directories under ``kustomize/``
whose kustomizations list them. ``metrics``: the Metric serving ``/metrics/resource``
for metrics-server and the ClusterResourceUsage reading usage from pod annotations."""


class BuildError(RuntimeError):
    """A component could not be built; the message names the log to read."""


class BinaryMissing(RuntimeError):
    """A component is not in the cache; ``make binaries`` builds it."""


def cache_dir() -> Path:
    return Path(os.environ.get("VCSYNC_CACHE", Path.home() / ".cache" / "vcsync"))


def bin_dir() -> Path:
    return cache_dir() / "bin"


def default_version(component: str) -> str:
    versions = {
        "etcd": ETCD_VERSION,
        "kine": KINE_VERSION,
        "kwok": KWOK_VERSION,
        "helm": HELM_VERSION,
        "metrics-server": METRICS_SERVER_VERSION,
        "ginkgo": GINKGO_VERSION,
    }
    return versions.get(component, KUBERNETES_VERSION)


def binary_path(component: str, version: str | None = None) -> Path:
    """Return the cached binary of ``component`` or raise :class:`BinaryMissing`."""
    path = bin_dir() / f"{component}-{version or default_version(component)}"
    if not path.is_file():
        raise BinaryMissing(f"{path.name} is not built; run `make binaries` first")
    return path


def _kwok_file(kind: str) -> Path:
    path = cache_dir() / f"kwok-{kind}-{KWOK_VERSION}.yaml"
    if not path.is_file():
        raise BinaryMissing(f"{path.name} is missing; run `make binaries` first")
    return path


def kwok_stages_path() -> Path:
    """The kwok Stage objects, taken from the kwok module (not from this repo)."""
    return _kwok_file("stages")


def kwok_crds_path() -> Path:
    """kwok's CustomResourceDefinitions (Logs, Exec, ...), from the same module."""
    return _kwok_file("crds")


def kwok_metrics_path() -> Path:
    """kwok's resource metrics (Metric, ClusterResourceUsage), from the same module."""
    return _kwok_file("metrics")


@dataclass(frozen=True)
class _Job:
    """One thing to build: a cache file name and how to produce it."""

    name: str  # e.g. "kube-apiserver-v1.36.3"
    kind: str  # "kube", "e2e", "ginkgo", "etcd", "install", "stages", "metrics", "crds"
    package: str = ""
    version: str = ""
    ldflags: str = ""


def _run(cmd: list[str], cwd: Path, log: Path, env: dict[str, str]) -> None:
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}  (in {cwd})\n")
        out.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise BuildError(f"`{' '.join(cmd[:3])} ...` failed (exit {proc.returncode}); see {log}")


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(CGO_ENABLED="0", GOFLAGS="-mod=mod", GOTOOLCHAIN=env.get("GOTOOLCHAIN", "local"))
    return env


def _module_dir(module: str, version: str, cwd: Path, log: Path, env: dict[str, str]) -> Path:
    """Download a module into GOMODCACHE and return its source directory."""
    cmd = ["go", "mod", "download", "-json", f"{module}@{version}"]
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    with log.open("a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n{out.stdout}{out.stderr}")
    if out.returncode != 0:
        raise BuildError(f"downloading {module}@{version} failed; see {log}")
    return Path(json.loads(out.stdout)["Dir"])


def _kube_ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return " ".join(["-s", "-w", *flags])


def _kube_wrapper(version: str, log: Path, env: dict[str, str], name: str = "kubernetes") -> Path:
    """A throw-away module requiring k8s.io/kubernetes with its staging replaces.

    k8s.io/kubernetes pins its ~33 staging modules at v0.0.0 and maps them to
    ./staging/...; a dependant must replace each with the published v0.X.Y.
    The list is derived from the downloaded go.mod, never hand-copied.
    ``name``: the conformance builds get a wrapper of their own, so the test
    dependencies they add to go.sum never touch the components' module.
    """
    work = cache_dir() / "build" / f"{name}-{version}"
    work.mkdir(parents=True, exist_ok=True)
    if (work / ".ready").is_file():
        return work
    (work / "go.mod").write_text("module vcsync.local/kubebuild\n\ngo 1.26.0\n")
    src = _module_dir("k8s.io/kubernetes", version, work, log, env)
    staging_version = "v0." + version.lstrip("v").split(".", 1)[1]
    replaces = []
    for line in (src / "go.mod").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "=>" and parts[2].startswith("./staging/"):
            replaces.append(f"\t{parts[0]} => {parts[0]} {staging_version}")
    if not replaces:
        raise BuildError(f"no staging replaces found in {src / 'go.mod'}; see {log}")
    (work / "go.mod").write_text(
        "module vcsync.local/kubebuild\n\ngo 1.26.0\n\ngodebug default=go1.26\n\n"
        f"require k8s.io/kubernetes {version}\n\nreplace (\n" + "\n".join(replaces) + "\n)\n"
    )
    (work / ".ready").write_text("ok\n")
    return work


def _plain_wrapper(name: str, module: str, version: str) -> Path:
    work = cache_dir() / "build" / f"{name}-{version}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(
        f"module vcsync.local/{name}build\n\ngo 1.26.0\n\nrequire {module} {version}\n"
    )
    return work


def _kustomize_files(directory: Path, log: Path) -> list[Path]:
    """The files ``directory``'s kustomization.yaml lists as resources (a listed
    directory contributes its own kustomization's files)."""
    kustomization = directory / "kustomization.yaml"
    if not kustomization.is_file():
        raise BuildError(f"{kustomization} is missing; see {log}")
    files: list[Path] = []
    for line in kustomization.read_text().splitlines():
        if line.strip().startswith("- "):
            path = directory / line.strip()[2:]
            files += _kustomize_files(path, log) if path.is_dir() else [path]
    return files


def _build_job(job: _Job, target: Path, log: Path) -> None:
    env = _go_env()
    tmp = target.with_suffix(".partial")
    if job.kind == "kube":
        work = _kube_wrapper(job.version, log, env)
        cmd = ["go", "build", "-trimpath", "-ldflags", _kube_ldflags(job.version), "-o", str(tmp)]
        _run([*cmd, f"k8s.io/kubernetes/cmd/{job.package}"], work, log, env)
    elif job.kind in ("e2e", "ginkgo"):
        work = _kube_wrapper(job.version, log, env, "kubernetes-e2e")
        build, ldflags = ((["test", "-c"], _kube_ldflags(job.version)) if job.kind == "e2e"
                          else (["build"], "-s -w"))
        cmd = ["go", *build, "-trimpath", "-ldflags", ldflags, "-o", str(tmp)]
        _run([*cmd, job.package], work, log, env)
    elif job.kind == "etcd":
        work = _plain_wrapper("etcd", "go.etcd.io/etcd/server/v3", job.version)
        cmd = ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp)]
        _run([*cmd, "go.etcd.io/etcd/server/v3"], work, log, env)
    elif job.kind == "install":
        gobin = cache_dir() / "build" / f"gobin-{job.name}"
        gobin.mkdir(parents=True, exist_ok=True)
        env = dict(env, GOBIN=str(gobin), GOFLAGS="")
        cmd = ["go", "install", "-trimpath", "-ldflags", f"-s -w {job.ldflags}".strip()]
        _run([*cmd, f"{job.package}@{job.version}"], cache_dir(), log, env)
        shutil.move(str(gobin / job.package.rsplit("/", 1)[-1]), tmp)
    else:  # kwok stages / metrics / CRDs: concatenated from the module's kustomize tree
        src = _module_dir("sigs.k8s.io/kwok", job.version, cache_dir(), log, env)
        files = ([f for rel in KWOK_KUSTOMIZATIONS[job.kind]
                  for f in _kustomize_files(src / "kustomize" / rel, log)]
                 if job.kind in KWOK_KUSTOMIZATIONS
                 else sorted((src / "kustomize" / "crd" / "bases").glob("*.yaml")))
        if not files:
            raise BuildError(f"no {job.kind} files in {src / 'kustomize'}; see {log}")
        tmp.write_text("\n---\n".join(p.read_text() for p in files))
    tmp.chmod(0o755)
    tmp.replace(target)


def conformance_jobs() -> list[_Job]:
    """e2e.test of KUBERNETES_VERSION and the Ginkgo CLI, built in that release's module
    (``make binaries-conformance``; not part of ``make binaries``: ~5 min, 110 MB)."""
    return [
        _Job(f"e2e.test-{KUBERNETES_VERSION}", "e2e", E2E_PACKAGE, KUBERNETES_VERSION),
        _Job(f"ginkgo-{GINKGO_VERSION}", "ginkgo", "github.com/onsi/ginkgo/v2/ginkgo",
             KUBERNETES_VERSION),
    ]


def _jobs(kube_versions: list[str], conformance: bool = False) -> list[_Job]:
    jobs = [_Job(f"{c}-{v}", "kube", c, v) for v in kube_versions for c in KUBE_COMPONENTS]
    jobs += conformance_jobs() if conformance else []
    jobs += [
        _Job(f"etcd-{ETCD_VERSION}", "etcd", version=ETCD_VERSION),
        _Job(f"kine-{KINE_VERSION}", "install", "github.com/k3s-io/kine", KINE_VERSION),
        _Job(f"kwok-{KWOK_VERSION}", "install", "sigs.k8s.io/kwok/cmd/kwok", KWOK_VERSION),
        _Job(
            f"helm-{HELM_VERSION}", "install", "helm.sh/helm/v3/cmd/helm", HELM_VERSION,
            f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
        ),
        _Job(
            f"metrics-server-{METRICS_SERVER_VERSION}", "install",
            "sigs.k8s.io/metrics-server/cmd/metrics-server", METRICS_SERVER_VERSION,
            f"-X k8s.io/client-go/pkg/version.gitVersion={METRICS_SERVER_VERSION}",
        ),
        *(_Job(f"kwok-{kind}-{KWOK_VERSION}", kind, version=KWOK_VERSION)
          for kind in (*KWOK_KUSTOMIZATIONS, "crds")),
    ]
    return jobs


def _target(job: _Job) -> Path:
    if job.kind in (*KWOK_KUSTOMIZATIONS, "crds"):
        return cache_dir() / f"{job.name}.yaml"
    return bin_dir() / job.name


def build(kube_versions: list[str], only: set[str] | None = None,
          conformance: bool = False) -> float:
    """Build every missing binary; return elapsed seconds. Raises BuildError."""
    if shutil.which("go") is None:
        raise BuildError("Go is not installed (no `go` on PATH); install Go 1.26+ and retry")
    bin_dir().mkdir(parents=True, exist_ok=True)
    log_dir = cache_dir() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    jobs = [j for j in _jobs(kube_versions, conformance)
            if only is None or j.name.rsplit("-v", 1)[0] in only]
    for i, job in enumerate(jobs, 1):
        target = _target(job)
        prefix = f"[{i}/{len(jobs)}] {job.name}"
        if target.is_file():
            print(f"{prefix}: cached", flush=True)
            continue
        print(f"{prefix}: building ...", flush=True)
        t0 = time.monotonic()
        _build_job(job, target, log_dir / f"{job.name}.log")
        print(f"{prefix}: built in {time.monotonic() - t0:.0f}s", flush=True)
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vcsync-build", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--skew", action="store_true",
        help=f"also build Kubernetes {SKEW_KUBERNETES_VERSION} for version-skew tests",
    )
    parser.add_argument(
        "--conformance", action="store_true",
        help=f"also build e2e.test {KUBERNETES_VERSION} and ginkgo {GINKGO_VERSION}",
    )
    parser.add_argument("--only", action="append", help="build only this component (repeatable)")
    args = parser.parse_args(argv)
    versions = [KUBERNETES_VERSION] + ([SKEW_KUBERNETES_VERSION] if args.skew else [])
    try:
        elapsed = build(versions, set(args.only) if args.only else None, args.conformance)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"all binaries ready in {bin_dir()} ({elapsed:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
