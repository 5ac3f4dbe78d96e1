# shipbot's own image. BASE is configuration: where a registry is reachable the default
# python image is pulled; any Debian-based image with Python >= 3.11 (and its venv module)
# works, e.g. one built from debootstrap where nothing can be pulled (tests/self_image.py).
ARG BASE=python:3.11-slim-bookworm

# 1. the venv: runtime wheels only (no compilers: every dependency ships a wheel), then pip
#    and setuptools taken out, since nothing installs at run time
FROM ${BASE} AS venv
WORKDIR /opt/shipbot
RUN python3 -m venv /opt/shipbot/venv
ENV PATH=/opt/shipbot/venv/bin:$PATH PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.lock ./
RUN pip install --no-cache-dir --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot bot
COPY commands commands
COPY core core
COPY rooms rooms
RUN pip install --no-cache-dir --no-deps . \
 && pip uninstall -q -y pip setuptools

# 2. the image: the base, git and ssh (apps from git, remote swarms), and the venv.
#    git's clone, fetch and checkout are C; perl (47 MB) serves only git's scripts shipbot
#    never runs (send-email, svn, add--interactive's old form), so it goes. Debian images
#    made with debootstrap keep the downloaded .debs: the whole apt cache goes too.
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      git openssh-client \
 && dpkg --purge --force-depends perl perl-modules-5.36 libperl5.36 liberror-perl \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/*
COPY --from=venv /opt/shipbot/venv /opt/shipbot/venv
ENV PATH=/opt/shipbot/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /opt/shipbot
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
