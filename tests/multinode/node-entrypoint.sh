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
node-dockerd start
trap 'node-dockerd stop; kill $(cat /run/sshd.pid) 2>/dev/null; exit 0' TERM INT
while :; do sleep 3600 & wait $! || true; done
