"""Start the syncer as the chart runs it: create the virtual cluster's CoreDNS first.

Waits for the virtual API server (it starts next to this container in the
same pod), creates the CoreDNS objects that are missing (the manifests of
``syncer.local.coredns``, the ones the local driver applies, with the image
and replica count the chart's values give), then replaces itself with the
command after ``--`` (``vcsync run ...``), so the syncer gets the signals.

Existing objects are left as they are (create-only, like the local driver):
a tenant may have tuned its CoreDNS.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from syncer.kube.blocking import BlockingClient, BlockingError
from syncer.local import coredns


def manifests(image: str, replicas: int) -> list[tuple[str, dict[str, Any]]]:
    """The local driver's CoreDNS objects with the chart's image and replica count."""
    objects = coredns.manifests()
    for path, obj in objects:
        if path.endswith("/deployments"):
            obj["spec"]["replicas"] = replicas
            if image:
                for container in obj["spec"]["template"]["spec"]["containers"]:
                    container["image"] = image
    return objects


def bootstrap(client: BlockingClient, image: str, replicas: int, timeout: float) -> None:
    """Wait for the API server, then create CoreDNS; retry until ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    problem = "the virtual API server did not answer /readyz"
    while time.monotonic() < deadline:
        if client.request("GET", "/readyz")[0] == 200:
            try:
                coredns.apply(client, manifests(image, replicas))
                return
            except BlockingError as exc:
                problem = str(exc)
        time.sleep(1)
    raise BlockingError(f"CoreDNS not created after {timeout:.0f}s: {problem}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("start: usage: start.py [options] -- vcsync run ...", file=sys.stderr)
        return 2
    split = argv.index("--")
    own, command = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--virtual-kubeconfig", required=True, type=Path)
    parser.add_argument("--coredns-image", default="", help="default: the local driver's image")
    parser.add_argument("--coredns-replicas", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(own)
    if not command:
        parser.error("no command after --")
    config = yaml.safe_load(args.virtual_kubeconfig.read_text())
    client = BlockingClient.from_kubeconfig(config)
    try:
        bootstrap(client, args.coredns_image, args.coredns_replicas, args.timeout)
    except BlockingError as exc:
        print(f"start: {exc}", file=sys.stderr)
        return 1
    print("start: CoreDNS is in the virtual cluster; starting the syncer", flush=True)
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
