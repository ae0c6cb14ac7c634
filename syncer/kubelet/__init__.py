"""The kubelet endpoint of ``vcsync run``: logs, exec, attach and port-forward for tenants.

Why the syncer serves a kubelet API at all: the virtual kube-apiserver answers
``pods/log``, ``pods/exec``, ``pods/attach`` and ``pods/portforward`` by dialing
the kubelet of the pod's node, at the address and port the virtual Node shows.
The host's kubelets must not trust the virtual cluster's client certificate
(and are usually unreachable from it), so virtual Nodes point at this endpoint
instead, and it forwards each call to the *host* API's pod subresource with the
syncer's own host identity.

Layers, each importing only those above it in this list:

- :mod:`.routes`: which kubelet paths exist and what host API call each
  becomes (pure);
- :mod:`.http1`: reading and writing HTTP/1.1 heads and small bodies;
- :mod:`.splice`: copying bytes both ways with bounded buffers;
- :mod:`.tls`: the endpoint's TLS material (client CA, minted serving certs);
- :mod:`.pods`: which host pod a virtual pod may reach (the caches decide);
- :mod:`.server`: the listener that ties them together;
- :mod:`.loop`: the thread and stdlib loop it runs on, away from uvloop.
"""
