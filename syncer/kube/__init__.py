"""The only code that speaks HTTP to Kubernetes API servers."""
