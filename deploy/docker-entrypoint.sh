#!/bin/sh
# shipbot runs as the unprivileged user `shipbot`. A mounted Docker socket is reached
# through its own group (whatever gid the host gave it), so no root is needed for it;
# without a socket (remote swarms over SSH only) shipbot has no extra group at all.
set -eu
if [ "$(id -u)" != 0 ]; then
  exec shipbot "$@"
fi
home=${SHIPBOT_HOME:-/data}
mkdir -p "$home"
# a bind-mounted or pre-existing state folder may belong to root
chown shipbot:shipbot "$home"
socket=${SHIPBOT_DOCKER_SOCKET:-/var/run/docker.sock}
if [ -S "$socket" ]; then
  set -- --groups="$(stat -c %g "$socket")" -- shipbot "$@"
else
  set -- --clear-groups -- shipbot "$@"
fi
exec setpriv --reuid=shipbot --regid=shipbot --inh-caps=-all --bounding-set=-all "$@"
