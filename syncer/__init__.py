"""vcsync: the syncer daemon, its Kubernetes client layer and local control planes."""
