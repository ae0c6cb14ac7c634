"""``vcsync run``: the syncer daemon (what the Helm chart runs as a sidecar)."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "run", help="run the syncer for one virtual cluster",
        description="Sync a virtual cluster's objects into its host namespace.",
    )
    p.add_argument("--name", required=True, help="virtual cluster name (managed-by label value)")
    p.add_argument("--host-namespace", required=True, help="host namespace of this cluster")
    p.add_argument("--virtual-kubeconfig", required=True, help="kubeconfig of the virtual API")
    host = p.add_mutually_exclusive_group(required=True)
    host.add_argument("--host-kubeconfig", help="kubeconfig of the host cluster")
    host.add_argument("--in-cluster", action="store_true", help="use the pod's service account")
    p.add_argument("--config", help="sync rules (YAML, same keys as the Helm values)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. sync.toHost.ingresses.enabled=true")
    p.add_argument("--health-address", default="127.0.0.1:8080",
                   help="host:port of /healthz, /readyz, /metrics (default %(default)s)")
    p.add_argument("--leader-elect", action="store_true",
                   help="take a Lease in the host namespace; only the holder writes")
    p.add_argument("--identity", help="leader-election identity (default hostname-pid)")
    p.add_argument("--api-service", default="",
                   help="host Service fronting the virtual API server (default: --name)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="the lowest level logged (default %(default)s)")
    p.add_argument("--kubelet-address", default="127.0.0.1:10250", metavar="IP:PORT",
                   help="kubelet endpoint for logs/exec/attach/port-forward; virtual Nodes "
                        "show this IP and port; 'off' disables it (default %(default)s)")
    p.add_argument("--kubelet-ca-cert", default="", metavar="FILE",
                   help="kubelet CA certificate: the virtual kube-apiserver's kubelet client "
                        "certificate must come from it")
    p.add_argument("--kubelet-ca-key", default="", metavar="FILE",
                   help="its key (the endpoint's serving certificate is minted from it)")
    p.add_argument("--metrics-api-port", type=int, default=9443, metavar="PORT",
                   help="127.0.0.1 port of the metrics API (kubectl top) that the syncer "
                        "registers in the virtual cluster; its front-proxy client certificate "
                        "must come from the kubelet CA; 0 disables it (default %(default)s)")
    p.add_argument("--snapshot-address", default="", metavar="IP:PORT",
                   help="serve GET /snapshot here (the admin token required); off by default")
    p.add_argument("--snapshot-store", default="", metavar="FILE",
                   help="kine's SQLite file, copied consistently for a snapshot")
    p.add_argument("--snapshot-pki", default="", metavar="DIR",
                   help="the control plane's CA, keys and token file (goes into a snapshot)")
    p.add_argument("--kubernetes-version", default="",
                   help="of the virtual control plane (a snapshot's manifest records it)")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    # Imported here: the engine pulls in aiohttp, uvloop and the translators
    # that the other commands never need.
    from syncer.app import RunOptions, run

    extra = {"identity": args.identity} if args.identity else {}
    return run(
        RunOptions(
            name=args.name,
            host_namespace=args.host_namespace,
            virtual_kubeconfig=args.virtual_kubeconfig,
            host_kubeconfig=args.host_kubeconfig,
            config_path=args.config,
            set_values=tuple(args.set),
            health_address=args.health_address,
            leader_elect=args.leader_elect,
            api_service=args.api_service,
            log_level=args.log_level,
            kubelet_address=args.kubelet_address,
            kubelet_ca_cert=args.kubelet_ca_cert,
            kubelet_ca_key=args.kubelet_ca_key,
            metrics_api_port=args.metrics_api_port,
            snapshot_address=args.snapshot_address,
            snapshot_store=args.snapshot_store,
            snapshot_pki=args.snapshot_pki,
            kubernetes_version=args.kubernetes_version,
            **extra,
        )
    )
