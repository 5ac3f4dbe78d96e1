#!/bin/sh
# The official redis image's contract: redis-server runs as user redis in /data.
set -eu
if [ "$(id -u)" = 0 ]; then
  chown -R redis:redis /data
  exec gosu redis "$0" "$@"
fi
exec "$@"
