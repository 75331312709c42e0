#!/usr/bin/env bash
# Installs the client libraries of the cross-language workload tests into
# ${PAMTRAIL_HOME:-<repo>/.pamtrail}/clients/<language>, from the ordinary
# registries (PyPI, Maven Central, npm). Idempotent: a stamp file records
# what is installed, so a second run only checks it.
#
#   install.sh python|java|node
set -euo pipefail

PSYCOPG_VERSION=3.3.9
PGJDBC_VERSION=42.7.14
NODE_PG_VERSION=8.23.1
PG_COPY_STREAMS_VERSION=7.0.0

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
home=${PAMTRAIL_HOME:-$repo/.pamtrail}
lang=${1:?usage: install.sh python|java|node}
dest=$home/clients/$lang
stamp=$dest/.installed

install_python() {
	python3 -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore --target "$dest/lib" \
		"psycopg[binary]==$PSYCOPG_VERSION"
}

install_java() {
	mvn -q -B dependency:copy -Dartifact="org.postgresql:postgresql:$PGJDBC_VERSION" -DoutputDirectory="$dest/lib"
	mkdir -p "$dest/classes"
	javac -nowarn -d "$dest/classes" -cp "$dest/lib/postgresql-$PGJDBC_VERSION.jar" "$here/java/Workload.java"
}

install_node() {
	npm install --silent --no-audit --no-fund --prefix "$dest" "pg@$NODE_PG_VERSION" "pg-copy-streams@$PG_COPY_STREAMS_VERSION"
}

# The stamp names the versions (and, for Java, the compiled workload's
# hash), so changing either reinstalls.
want="$PSYCOPG_VERSION $PGJDBC_VERSION $NODE_PG_VERSION $PG_COPY_STREAMS_VERSION"
if [[ $lang == java ]]; then
	want+=" $(sha256sum "$here/java/Workload.java" | cut -c1-16)"
fi
if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
	exit 0
fi
case $lang in
python | java | node) ;;
*) echo "install.sh: unknown language '$lang' (python, java, node)" >&2; exit 2 ;;
esac
mkdir -p "$dest"
chmod 0700 "$dest" 2>/dev/null || true
"install_$lang"
echo "$want" >"$stamp"
