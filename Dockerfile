# syntax=docker/dockerfile:1
# ai-cost-exporter container image. Build: docker build -t ai-cost-exporter .
# Run the demo (no keys): docker run --rm -p 9877:9877 ai-cost-exporter demo --web.listen-address :9877

# Build stage: turn the project and its dependencies into wheels, so the runtime stage needs no compiler
# and no build tools.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
# A fixed, unprivileged UID/GID (10001), so that mounted secret files can be made readable to exactly
# this user (Kubernetes: runAsUser/fsGroup 10001).
RUN groupadd --system --gid 10001 aicost \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin aicost
# Every wheel: the project and exactly the dependency versions resolved in the build stage. A bind mount
# (BuildKit) instead of COPY keeps the wheels out of the image layers.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 9877
# slim images have no curl: ask /-/healthy with Python itself. The exporter listens on :9877 by default;
# change the URL if you pass another --web.listen-address.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9877/-/healthy', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["ai-cost-exporter"]
CMD ["run", "--config.file", "/etc/ai-cost-exporter/config.yaml"]
