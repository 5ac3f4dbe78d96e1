# shipbot's own image. BASE is configuration: where a registry is reachable the default
# python image is pulled; any Debian-based image with Python >= 3.11 (and its venv module)
# works, e.g. one built from debootstrap where nothing can be pulled (tests/self_image.py).
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
# git for apps from git, ssh for remote swarms; setpriv (util-linux) is in every Debian base
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      git openssh-client \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/shipbot
# a venv: Debian's own python refuses system-wide pip installs (PEP 668)
RUN python3 -m venv /opt/shipbot/venv
ENV PATH=/opt/shipbot/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot bot
COPY commands commands
COPY core core
COPY rooms rooms
RUN pip install --no-cache-dir --no-deps . \
 && rm -rf bot commands core rooms build ./*.egg-info
COPY deploy/docker-entrypoint.sh /usr/local/bin/shipbot-entrypoint
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home shipbot \
 && mkdir -p /data && chown shipbot:shipbot /data
# the revision shipbot says it runs when it comes up (`shipbot self deploy` passes it)
ARG REVISION=unknown
ENV SHIPBOT_HOME=/data SHIPBOT_REVISION=${REVISION}
VOLUME /data
HEALTHCHECK --interval=5s --timeout=5s --start-period=20s --retries=3 CMD ["shipbot", "health"]
ENTRYPOINT ["shipbot-entrypoint"]
CMD ["serve"]
