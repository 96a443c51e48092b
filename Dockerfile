# ndr-exporter: follows mail-server logs and exports their SMTP status codes for Prometheus.
# Build:  docker build -t ndr-exporter .
# Run:    docker run -v /var/log:/var/log:ro --group-add 4 -p 39798:39798 ndr-exporter \
#           --source.path=/var/log/mail.log

# --- build stage: a virtual environment with the exporter and its dependencies ---
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# gcc builds exporter._fastscan, the syslog parser's compiled scanner (setup.py); only the
# virtual environment leaves this stage, so the compiler's exact version never reaches the image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml setup.py README.md ./
COPY exporter ./exporter
RUN python -m venv /opt/ndr-exporter \
    && /opt/ndr-exporter/bin/pip install --no-cache-dir . \
    && /opt/ndr-exporter/bin/python -c "import exporter._fastscan" \
    && /opt/ndr-exporter/bin/python -m compileall -q /opt/ndr-exporter/lib

# --- run stage: the slim base, the virtual environment, an unprivileged user ---
FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="ndr-exporter" \
      org.opencontainers.image.description="Prometheus exporter for SMTP status codes (RFC 3463) in mail-server logs" \
      org.opencontainers.image.licenses="Apache-2.0"
# uid 10001, member of adm (gid 4), which owns /var/log/mail.log on Debian and Ubuntu hosts.
RUN useradd --system --uid 10001 --gid nogroup --groups adm --no-create-home \
        --home-dir /var/lib/ndr-exporter --shell /usr/sbin/nologin ndr-exporter \
    && mkdir -p /var/lib/ndr-exporter /etc/ndr-exporter \
    && chown 10001:nogroup /var/lib/ndr-exporter
COPY --from=build /opt/ndr-exporter /opt/ndr-exporter
ENV PATH=/opt/ndr-exporter/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NDR_EXPORTER_STATE_FILE=/var/lib/ndr-exporter/checkpoint.json
VOLUME ["/var/lib/ndr-exporter"]
USER 10001
EXPOSE 39798
# Any HTTP answer means the exporter is up (a 401 too, when basic auth is on); no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys,urllib.request as r,urllib.error as e\ntry: r.urlopen('http://127.0.0.1:39798/metrics', timeout=4)\nexcept e.HTTPError: pass\nexcept OSError: sys.exit(1)"]
ENTRYPOINT ["ndr-exporter"]
CMD ["--config.file=/etc/ndr-exporter/config.yml"]
