#!/bin/sh
# tini is PID 1 and dockerd is not, so a test can stop the engine while sshd stays up.
set -e
mount -o remount,rw /sys 2>/dev/null || true
for d in /sys/fs/cgroup/*; do mount -o remount,rw,bind "$d" 2>/dev/null || true; done
ssh-keygen -A >/dev/null
if [ -n "$NODE_AUTHORIZED_KEY" ]; then
  echo "$NODE_AUTHORIZED_KEY" > /root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
fi
echo "$*" > /etc/node-dockerd-args
/usr/sbin/sshd
if command -v dockerd >/dev/null; then
  node-dockerd start
else
  # A bare host: this stands in for its init system, which starts the engine once the
  # docker.io package is installed (systemd does on Debian; its SysV script cannot here,
  # as it raises the open-files limit and these containers lack CAP_SYS_RESOURCE).
  ( until command -v dockerd >/dev/null; do sleep 0.5; done; sleep 1; node-dockerd start ) &
fi
trap 'node-dockerd stop; kill $(cat /run/sshd.pid) 2>/dev/null; exit 0' TERM INT
while :; do sleep 3600 & wait $! || true; done
