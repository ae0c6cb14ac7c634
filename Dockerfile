# syntax=docker/dockerfile:1
# The vcsync image: `vcsync run` (the syncer) as a non-root process under tini.
#
#   docker build -t vcsync:0.1.0 .
#   docker run --rm vcsync:0.1.0 --help
#
# The Helm chart (helm/vcsync) runs it as the syncer container of the control-plane
# pod, with --health-address=0.0.0.0:8080 so that the kubelet can probe it:
#   GET /healthz           200 while the process serves (liveness)
#   GET /readyz            200 once every informer cache is synced, else 503 (readiness)
#   GET /metrics           Prometheus: workqueue_*, rest_client_*, leader_election_master_status,
#                          vcsync_writes_total, vcsync_cached_objects
#   GET /debug/statistics  JSON: queues, informers, status writer
# The default --health-address is 127.0.0.1:8080 (reachable only inside the container,
# which is enough for the HEALTHCHECK below).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/vcsync
# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when they change.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > requirements.txt \
 && /opt/vcsync/bin/pip install --no-cache-dir -r requirements.txt
# Then the code: a wheel (hatchling), installed without touching the dependencies.
COPY README.md ./
COPY contract ./contract
COPY syncer ./syncer
COPY translators ./translators
COPY benchmarks ./benchmarks
COPY helm/vcsync ./helm/vcsync
RUN /opt/vcsync/bin/pip wheel --no-cache-dir --no-deps . -w /wheels \
 && /opt/vcsync/bin/pip install --no-cache-dir --no-deps /wheels/vcsync-*.whl

FROM ${PYTHON_IMAGE}
# tini as PID 1: forwards SIGTERM to vcsync (which finishes in-flight writes, releases its
# Lease and exits 0) and reaps zombies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /opt/vcsync /opt/vcsync
ENV PATH=/opt/vcsync/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# Non-root (the chart also sets runAsUser 65532 and a read-only root filesystem).
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["tini", "--", "vcsync", "run"]
