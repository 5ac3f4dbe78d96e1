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
# a node stopped with its engine still running (docker stop kills after its grace time)
# left the engine's pid files; the restarted dockerd refuses to start when another process
# of the new container has that pid ("pid file found"). None can be running yet.
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
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
