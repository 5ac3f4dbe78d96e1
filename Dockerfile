# shipbot's own image. BASE is configuration: where a registry is reachable the default
# python image is pulled; any Debian-based image with Python >= 3.11 (and its venv module)
# works, e.g. one built from debootstrap where nothing can be pulled.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/shipbot
# a venv: Debian's own python refuses system-wide pip installs (PEP 668)
RUN python3 -m venv /opt/shipbot/venv
ENV PATH=/opt/shipbot/venv/bin:$PATH
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot bot
COPY commands commands
COPY core core
RUN pip install --no-cache-dir --no-deps .
ENV SHIPBOT_HOME=/data
VOLUME /data
ENTRYPOINT ["shipbot"]
CMD ["serve"]
