"""The local host's kubelet simulation files (syncer.local.kwok), without kwok itself."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from syncer.local import binaries, kwok


def _shim(tmp_path: Path) -> Path:
    root = tmp_path / "kwok"
    (root / "bin").mkdir(parents=True)
    path = root / "bin" / "tar"
    path.write_text(kwok.TAR_SHIM.format(python=sys.executable, real=shutil.which("tar")))
    path.chmod(0o755)
    return path


def _archive(files: dict[str, bytes]) -> bytes:
    """A tar stream as kubectl writes it (Go's archive/tar: no padding to a full record)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        end = tar.offset  # after the last member; then the two zero blocks
    return buf.getvalue()[:end] + bytes(1024)


def test_extraction_ends_at_the_archive_marker_though_stdin_stays_open(tmp_path: Path) -> None:
    """kwok never closes a command's stdin: the shim must not wait for an EOF."""
    shim, dest = _shim(tmp_path), tmp_path / "dest"
    dest.mkdir()
    files = {"a.txt": b"hello\n", "dir/b.bin": bytes(range(256)) * 5 + bytes(1024)}
    with subprocess.Popen([shim, "--no-same-permissions", "--no-same-owner", "-xmf", "-",
                           "-C", dest], stdin=subprocess.PIPE) as proc:
        assert proc.stdin is not None
        proc.stdin.write(_archive(files))
        proc.stdin.flush()  # and keep it open, as kwok does
        assert proc.wait(timeout=20) == 0
        proc.stdin.close()
    assert (dest / "a.txt").read_bytes() == files["a.txt"]
    assert (dest / "dir" / "b.bin").read_bytes() == files["dir/b.bin"]


def test_other_uses_run_the_real_tar(tmp_path: Path) -> None:
    shim = _shim(tmp_path)
    (tmp_path / "f").write_text("x")
    out = subprocess.run([shim, "cf", "-", "f"], cwd=tmp_path, capture_output=True, timeout=20,
                         check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        assert tar.getnames() == ["f"]


def test_simulation_covers_every_pod_and_names_files_under_the_host(tmp_path: Path) -> None:
    objects = kwok.simulation(tmp_path)
    assert {o["kind"] for o in objects} == {"ClusterLogs", "ClusterAttach", "ClusterExec"}
    assert all("selector" not in o["spec"] for o in objects)
    text = yaml.safe_dump_all(objects)
    assert str(tmp_path / "logs" / "pods.log") in text
    assert str(tmp_path / "exec") in text


@pytest.mark.parametrize("line", kwok.default_log_lines())
def test_default_log_is_in_cri_format(line: str) -> None:
    stamp, stream, tag, message = line.split(" ", 3)
    assert stamp.endswith("Z")
    assert stream == "stdout"
    assert tag == "F"
    assert message


def test_kustomization_resources_are_followed_into_listed_directories(tmp_path: Path) -> None:
    """How the kwok metrics come from the module: metrics/usage lists its own file and
    ../resource, a directory with a kustomization of its own."""
    usage, resource = tmp_path / "usage", tmp_path / "resource"
    for directory, listed in ((usage, ["usage.yaml", "../resource"]),
                              (resource, ["metrics.yaml"])):
        directory.mkdir()
        (directory / "kustomization.yaml").write_text(
            "resources:\n" + "".join(f"- {name}\n" for name in listed))
    files = binaries._kustomize_files(usage, tmp_path / "log")
    assert files == [usage / "usage.yaml", usage / "../resource" / "metrics.yaml"]
    with pytest.raises(binaries.BuildError, match=r"kustomization\.yaml is missing"):
        binaries._kustomize_files(tmp_path / "absent", tmp_path / "log")
