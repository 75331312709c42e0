#!/usr/bin/env bash
# Installs the MySQL client libraries of the cross-language client tests
# into ${PAMTRAIL_HOME:-<repo>/.pamtrail}/clients/mysql-<language>, from
# the ordinary registries (PyPI, Maven Central). Idempotent: a stamp file
# records what is installed, so a second run only checks it.
#
#   install.sh python|java
set -euo pipefail

PYMYSQL_VERSION=1.2.4
MARIADB_JDBC_VERSION=3.5.7

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
home=${PAMTRAIL_HOME:-$repo/.pamtrail}
lang=${1:?usage: install.sh python|java}
dest=$home/clients/mysql-$lang
stamp=$dest/.installed

install_python() {
	# [rsa] brings cryptography, which caching_sha2_password needs to send
	# the password RSA-encrypted over a connection without TLS.
	python3 -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore --target "$dest/lib" \
		"PyMySQL[rsa]==$PYMYSQL_VERSION"
}

install_java() {
	mvn -q -B dependency:copy -Dartifact="org.mariadb.jdbc:mariadb-java-client:$MARIADB_JDBC_VERSION" -DoutputDirectory="$dest/lib"
	mkdir -p "$dest/classes"
	javac -nowarn -d "$dest/classes" -cp "$dest/lib/mariadb-java-client-$MARIADB_JDBC_VERSION.jar" "$here/java/Workload.java"
}

want="$PYMYSQL_VERSION $MARIADB_JDBC_VERSION"
if [[ $lang == java ]]; then
	want+=" $(sha256sum "$here/java/Workload.java" | cut -c1-16)"
fi
if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
	exit 0
fi
case $lang in
python | java) ;;
*) echo "install.sh: unknown language '$lang' (python, java)" >&2; exit 2 ;;
esac
mkdir -p "$dest"
chmod 0700 "$dest" 2>/dev/null || true
"install_$lang"
echo "$want" >"$stamp"
