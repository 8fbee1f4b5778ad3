# Tarjama server image. CPU by default; for CUDA pass a CUDA base image and torch index, e.g.
#   --build-arg BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TARJAMA_HOST=0.0.0.0 \
    TARJAMA_PORT=50051 \
    TARJAMA_CACHE_DIR=/cache \
    TARJAMA_STATE_DIR=/var/lib/tarjama

# CUDA base images have no pip of their own.
RUN command -v pip >/dev/null || (apt-get update && apt-get install -y --no-install-recommends python3-pip python3-venv \
    && rm -rf /var/lib/apt/lists/*)
RUN python3 -m venv /opt/tarjama
ENV PATH=/opt/tarjama/bin:$PATH

WORKDIR /src
COPY constraints.txt pyproject.toml README.md ./
# torch comes from the index that matches the base image; the rest is pinned as in CI.
RUN grep -v '^torch==' constraints.txt > /tmp/constraints.txt \
    && pip install --index-url ${TORCH_INDEX} "torch==$(sed -n 's/^torch==//p' constraints.txt | cut -d+ -f1)"
COPY proto ./proto
COPY src ./src
# The generated code comes from the same script CI checks.
# --build-arg EXTRAS=server,otel,postgres,bulk makes the image a KubeRay worker for `tarjama bulk`;
# postgres: stored glossaries on a PostgreSQL that replicas share (TARJAMA_DATABASE_URL).
ARG EXTRAS=server,otel,postgres
RUN pip install -c /tmp/constraints.txt grpcio-tools && python proto/compile_protos.py \
    && pip install -c /tmp/constraints.txt ".[${EXTRAS}]" && pip uninstall -y grpcio-tools

# Not root: the cache and the state (the stored glossaries' SQLite, without TARJAMA_DATABASE_URL)
# are the places the server writes (the root filesystem can be read-only).
RUN useradd --uid 10001 --create-home tarjama && mkdir -p /cache /var/lib/tarjama \
    && chown tarjama /cache /var/lib/tarjama
USER 10001
# --build-arg MODELS=1 bakes the models (downloaded and converted) into the image, so a pod starts
# from them in seconds and never needs the hub (run it with TARJAMA_OFFLINE=true).
# --build-arg TARJAMA_TRANSLATION_MODEL=fast=Helsinki-NLP/opus-mt-ar-en,best=Helsinki-NLP/opus-mt-tc-big-ar-en
# names the translation models (the first the default; empty: opus-mt-ar-en alone); the bake fetches
# each, and the image serves the ones it was built with. Build args are environment variables of the
# RUN below, so `tarjama models download` reads them as `serve` reads TARJAMA_*. A CUDA image built
# without a GPU also needs --build-arg TARJAMA_COMPUTE_TYPE=float16: the bake then converts for the
# GPU, not for the build machine's CPU (int8). It stays a build arg: a CPU run of the image keeps auto.
ARG TARJAMA_TRANSLATION_MODEL=""
ENV TARJAMA_TRANSLATION_MODEL=${TARJAMA_TRANSLATION_MODEL}
ARG TARJAMA_COMPUTE_TYPE=""
ARG MODELS=0
RUN if [ "$MODELS" = 1 ]; then tarjama models download; fi

# 0.0.0.0 is only safe with tokens: mount a tokens file and set TARJAMA_AUTH_TOKENS_FILE (the server
# warns at start-up otherwise); TLS through TARJAMA_TLS_CERT / TARJAMA_TLS_KEY; metrics with
# TARJAMA_METRICS_PORT=9100 (on loopback unless TARJAMA_METRICS_HOST=0.0.0.0, then give it a
# TARJAMA_METRICS_TOKEN_FILE); the HTTP API and reading page with TARJAMA_HTTP_PORT=8080.
VOLUME /cache /var/lib/tarjama
EXPOSE 50051 9100 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=3 \
    CMD tarjama health --server 127.0.0.1:50051 || exit 1
STOPSIGNAL SIGTERM
CMD ["tarjama", "serve"]
