#!/bin/sh
# Stand-in for the official postgres image's entrypoint, with the variables
# deploy/compose uses: POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD_FILE (or
# POSTGRES_PASSWORD), PGDATA. The first start creates the cluster with that
# superuser and database and scram-sha-256 for every host; it listens on 5432.
set -eu
PGDATA=${PGDATA:-/var/lib/postgresql/data}
BIN=/usr/lib/postgresql/15/bin
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
as_postgres() { /usr/bin/setpriv --reuid=999 --regid=999 --clear-groups "$@"; }

mkdir -p "$PGDATA" /var/run/postgresql
chown -R 999:999 "$PGDATA" /var/run/postgresql
chmod 0700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
		password=$(cat "$POSTGRES_PASSWORD_FILE")
	else
		password=${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD_FILE or POSTGRES_PASSWORD}
	fi
	pwfile=$(mktemp)
	printf '%s\n' "$password" >"$pwfile"
	chown 999 "$pwfile"
	as_postgres "$BIN/initdb" -D "$PGDATA" -U "$user" --pwfile="$pwfile" -A scram-sha-256 -E UTF8 --locale=C >/dev/null
	rm -f "$pwfile"
	echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
	if [ "$db" != postgres ]; then
		echo "CREATE DATABASE \"$db\" OWNER \"$user\"" | as_postgres "$BIN/postgres" --single -D "$PGDATA" postgres >/dev/null
	fi
fi
exec /usr/bin/setpriv --reuid=999 --regid=999 --clear-groups "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*'
