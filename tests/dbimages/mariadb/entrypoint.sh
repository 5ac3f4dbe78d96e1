#!/bin/sh
# The official mariadb (and mysql) image's contract, enough of it for shipbot's tests:
# MARIADB_* or MYSQL_* ROOT_PASSWORD, DATABASE, USER and PASSWORD on the first start.
set -eu
datadir=/var/lib/mysql
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$datadir" /run/mysqld
  chown -R mysql:mysql "$datadir" /run/mysqld
  exec gosu mysql "$0" "$@"
fi
root_password=${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}
database=${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}
user=${MARIADB_USER:-${MYSQL_USER:-}}
password=${MARIADB_PASSWORD:-${MYSQL_PASSWORD:-}}
if [ ! -d "$datadir/mysql" ]; then
  mariadb-install-db --datadir="$datadir" --skip-test-db --auth-root-authentication-method=normal >/dev/null
  socket=/run/mysqld/init.sock
  mariadbd --datadir="$datadir" --skip-networking --socket="$socket" &
  pid=$!
  tries=0
  until mariadb-admin --socket="$socket" ping >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 120 ] || { echo "bootstrap server did not start" >&2; exit 1; }
    sleep 0.5
  done
  {
    # Debian's install adds anonymous users that shadow 'user'@'%' for local TCP logins
    echo "DELETE FROM mysql.global_priv WHERE User='';"
    # and a password-less root for the container's own name and addresses, which would
    # shadow 'root'@'%' as well
    echo "DELETE FROM mysql.global_priv WHERE User='root' AND Host <> 'localhost';"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$root_password';"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY '$root_password';"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "$database" ]; then echo "CREATE DATABASE \`$database\`;"; fi
    if [ -n "$user" ]; then
      echo "CREATE USER '$user'@'%' IDENTIFIED BY '$password';"
      [ -z "$database" ] || echo "GRANT ALL ON \`$database\`.* TO '$user'@'%';"
    fi
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket="$socket" -uroot
  kill "$pid"
  wait "$pid" || true
fi
exec "$@"
