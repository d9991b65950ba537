# CodeArena on its embedded default: SQLite vote store on a volume, two local models on CPU, no key, no GPU.
FROM python:3.11-slim

# llama-cpp-python builds from source: a C/C++ toolchain and cmake are needed at build time. The same
# gcc/g++ serve the C and C++ runners; bubblewrap is the sandbox that answers' code runs in, and nodejs
# the JavaScript runner (Python's is this image's own interpreter). `codearena sandbox list` shows what
# runs. bubblewrap needs user namespaces, which Docker's default seccomp profile and masked /proc refuse:
# run the container with --security-opt seccomp=unconfined --security-opt systempaths=unconfined (and,
# on hosts whose AppArmor restricts user namespaces, --security-opt apparmor=unconfined) for the Run
# buttons to work; without them they say why they are off.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential=12.* cmake=3.* bubblewrap=0.* \
    && rm -rf /var/lib/apt/lists/*
# nodejs is whatever major the base image's Debian release carries (18 on 12, 20 on 13): no one glob
# pins both, and any of them runs the answers' JavaScript.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 arena \
    && mkdir -p /data \
    && chown arena:arena /data

WORKDIR /app
COPY --chown=arena:arena pyproject.toml README.md constraints.txt ./
COPY --chown=arena:arena codearena ./codearena
COPY --chown=arena:arena votes ./votes
COPY --chown=arena:arena ratings ./ratings
COPY --chown=arena:arena serving ./serving
COPY --chown=arena:arena arena_ui ./arena_ui

# GGML_NATIVE=OFF: the image must run on CPUs other than the build machine's.
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF" \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1
# The project itself, not a registry package: every dependency is pinned by constraints.txt.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir -c constraints.txt ".[ui,local]"

USER 10001
ENV CODEARENA_DB=/data/codearena.db \
    CODEARENA_CACHE=/data/cache \
    GRADIO_ANALYTICS_ENABLED=False
VOLUME ["/data"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/', timeout=4)"]
CMD ["codearena", "serve", "--host", "0.0.0.0", "--port", "7860"]
