# syntax=docker/dockerfile:1
# Hounsfield container image: `docker build -t hounsfield .` (docs/deployment.md).
# The image serves DICOMweb + the admin API on 8080 and DIMSE on 11112, keeps its state under
# /data (SQLite index, file blobs, staging), and carries the PostgreSQL, S3/GCS/Azure and event bus
# (Redis, RabbitMQ, NATS) drivers, so the same image runs embedded or scaled out
# (HOUNSFIELD_INDEX_URL, HOUNSFIELD_BLOB_URL, HOUNSFIELD_BUS_URL).

ARG PYTHON_VERSION=3.11

# --- build: a virtual environment with Hounsfield and its optional drivers --------------------
FROM python:${PYTHON_VERSION}-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/hounsfield

WORKDIR /src
# No compiler in this stage: every dependency is expected to install from a wheel.
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/hounsfield/bin/pip install --no-cache-dir ".[postgresql,s3,redis,amqp,nats]" \
 && /opt/hounsfield/bin/hounsfield --version

# --- runtime: the slim base, the virtual environment and a non-root user ----------------------
FROM python:${PYTHON_VERSION}-slim AS runtime

LABEL org.opencontainers.image.title="Hounsfield" \
      org.opencontainers.image.description="DICOM archive: DICOMweb and DIMSE over SQLite/PostgreSQL and file/object storage" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 hounsfield \
 && useradd --system --uid 10001 --gid hounsfield --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin hounsfield \
 && mkdir -p /data \
 && chown hounsfield:hounsfield /data

COPY --from=build /opt/hounsfield /opt/hounsfield

# HOUNSFIELD_AUTH_API_KEYS is a switch, not a secret: the image listens on every interface, so
# it requires API keys (`hounsfield keys create`, docs/security.md) unless configured otherwise.
# hadolint ignore=DL3064
ENV PATH=/opt/hounsfield/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOUNSFIELD_HOST=0.0.0.0 \
    HOUNSFIELD_AUTH_API_KEYS=true \
    HOUNSFIELD_DATA_DIR=/data

WORKDIR /data
VOLUME ["/data"]
# 8080: DICOMweb (/dicom-web) and admin API (/api); 11112: DIMSE.
EXPOSE 8080 11112

USER 10001:10001

# The slim image has no curl: ask /api/health with the standard library (503 while starting).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('HOUNSFIELD_HTTP_PORT', '8080'), timeout=4)"]

ENTRYPOINT ["hounsfield"]
CMD ["serve"]
