"""The virtual cluster's ``metrics.k8s.io``: ``kubectl top`` answered from the host's figures.

Why the syncer serves it: a tenant's pods run on the host, so only the host's
metrics pipeline (metrics-server scraping the host's kubelets) has their CPU and
memory. The virtual kube-apiserver's aggregator forwards ``metrics.k8s.io``
requests to the syncer (an APIService whose Service is ExternalName
``localhost``, see :mod:`.apiservice`); the syncer asks the host's
``metrics.k8s.io`` with its own host identity and answers with this tenant's
objects only, under their virtual names (vCluster's metrics proxy does the same).

Layers, each importing only those above it in this list:

- :mod:`.routes`: which paths exist, who the caller is, what to ask the virtual
  API's authorizer (pure);
- :mod:`.translate`: host PodMetrics/NodeMetrics to virtual ones, Status bodies
  (pure);
- :mod:`.apiservice`: the APIService and Service that route the group to a
  server on the cluster's own loopback (also used for the local host's
  metrics-server);
- :mod:`.server`: the TLS listener that ties them together.
"""
