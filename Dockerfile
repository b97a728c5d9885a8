# One DistCache node. `docker compose up` (docker-compose.yml) runs three of them as a cluster;
# deploy/kubernetes/ runs them as a StatefulSet. tests/deploy/test_dockerfile.py builds the
# package from exactly the files copied here and runs CMD and HEALTHCHECK as written.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/distcache
COPY pyproject.toml README.md ./
COPY distcache_core ./distcache_core
COPY plugins ./plugins
COPY deploy/docker/distcache.toml /etc/distcache/distcache.toml
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data distcache \
    && mkdir -p /data && chown distcache /data

USER distcache
WORKDIR /data
VOLUME /data
# 6379: RESP (clients and peers); 8080: the dashboard (/, /metrics, /health).
EXPOSE 6379 8080

HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["distcache", "health", "--port", "8080"]

# Settings in /etc/distcache/distcache.toml; NODE_ID and CLUSTER_NODES (and DISTCACHE_PASSWORD,
# DISTCACHE_CLUSTER_SECRET) from the environment; more with --set flags appended to this.
CMD ["distcache", "serve", "--config", "/etc/distcache/distcache.toml"]
