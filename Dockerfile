# ndr-exporter: follows mail-server logs and exports their SMTP status codes for Prometheus.
# Build:  docker build -t ndr-exporter .
# Run:    docker run -d --read-only --cap-drop=all --group-add 4 -p 19798:19798 \
#           -v /var/log:/var/log:ro -v ndr-state:/var/lib/ndr-exporter ndr-exporter
# tests/test_container.py builds this file with podman and runs the image that way.

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
# pip leaves the environment once it has installed the package: the image installs nothing at run
# time. `python -I` keeps /src (the sources, without the compiled module) off sys.path, so the
# check imports the installed package.
RUN python -m venv /opt/ndr-exporter \
    && /opt/ndr-exporter/bin/pip install --no-cache-dir . \
    && /opt/ndr-exporter/bin/pip uninstall --yes pip setuptools \
    && /opt/ndr-exporter/bin/python -I -c "import exporter._fastscan" \
    && /opt/ndr-exporter/bin/python -m compileall -q /opt/ndr-exporter/lib

# --- run stage: the slim base, the virtual environment, an unprivileged user ---
FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="ndr-exporter" \
      org.opencontainers.image.description="Prometheus exporter for SMTP status codes (RFC 3463) in mail-server logs" \
      org.opencontainers.image.licenses="Apache-2.0"
# uid 10001, member of adm (gid 4), which owns /var/log/mail.log on Debian and Ubuntu hosts.
# The base image's own pip (python:*-slim ships one) is removed as well.
RUN if python -m pip --version >/dev/null 2>&1; then \
        python -m pip uninstall --yes --no-cache-dir pip setuptools wheel; fi \
    && useradd --system --uid 10001 --gid nogroup --groups adm --no-create-home \
        --home-dir /var/lib/ndr-exporter --shell /usr/sbin/nologin ndr-exporter \
    && mkdir -p /var/lib/ndr-exporter /etc/ndr-exporter \
    && chown 10001:nogroup /var/lib/ndr-exporter
COPY --from=build /opt/ndr-exporter /opt/ndr-exporter
ENV PATH=/opt/ndr-exporter/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NDR_EXPORTER_STATE_FILE=/var/lib/ndr-exporter/checkpoint.json
VOLUME ["/var/lib/ndr-exporter"]
USER 10001
EXPOSE 19798
# exporter.healthcheck finds the port the exporter really listens on (from /proc, whatever flag,
# variable or config file set it) and counts any HTTP answer there as healthy, a 401 included.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-m", "exporter.healthcheck"]
ENTRYPOINT ["ndr-exporter"]
# With no arguments: follow /var/log/mail.log (mount it) on port 19798. Any arguments replace these
# two, e.g. --config.file=/etc/ndr-exporter/config.yml (its listen_address is then honoured).
CMD ["--source.path=/var/log/mail.log", "--web.listen-address=:19798"]
