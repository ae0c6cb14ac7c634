"""Real Kubernetes control planes as local processes: build, launch, tear down."""
