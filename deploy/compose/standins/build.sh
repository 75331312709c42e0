#!/usr/bin/env bash
# Builds local stand-ins for the third-party images of deploy/compose/, which
# cannot be pulled here (no registry is reachable): each is FROM scratch with
# a root filesystem assembled from this machine's Debian binaries and their
# shared libraries, busybox-static for a shell, and an entrypoint that honours
# the same environment variables, ports and paths as the official image the
# compose file names. They exist for the compose test only.
#   pamtrail-standin-es:<es version>   Elasticsearch (the integ-test-zip that
#                                      deploy/local installs) on its JDK
#   pamtrail-standin-pg:15             PostgreSQL 15 from Debian
#   pamtrail-standin-sshd:9            OpenSSH from Debian
# Usage: build.sh [es|pg|sshd]...   (default: all three). Prints the tags as
# KEY=value lines for the compose variables (PAMTRAIL_ES_IMAGE=...).
set -euo pipefail
shopt -s lastpipe
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
SCRIPT_DIR=$REPO/deploy/local
# shellcheck source=deploy/local/lib.sh
. "$REPO/deploy/local/lib.sh"
# shellcheck source=deploy/local/elasticsearch.sh
. "$REPO/deploy/local/elasticsearch.sh"
LOG_TAG=standins
DOCKER=${PAMTRAIL_DOCKER:-/usr/bin/docker}
WORK=$REPO/_build/standins

# copy_with_libs ROOTFS FILE... copies each file to the same path under
# ROOTFS together with every shared library it loads and the dynamic loader.
copy_with_libs() {
	local root=$1 f lib
	shift
	for f in "$@"; do
		mkdir -p "$root$(dirname "$f")"
		cp -L "$f" "$root$f"
		ldd "$f" 2>/dev/null | awk '/=> \//{print $3} /^\t\//{print $1}' | while read -r lib; do
			[[ -e $root$lib ]] && continue
			mkdir -p "$root$(dirname "$lib")"
			cp -L "$lib" "$root$lib"
		done
	done
}

# base_rootfs NAME prepares a root filesystem with busybox as /bin/sh and its
# applets, /etc/passwd and /tmp.
base_rootfs() {
	local root=$WORK/$1/rootfs applet
	rm -rf "$WORK/$1"
	mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/run"
	chmod 1777 "$root/tmp"
	cp /bin/busybox "$root/bin/busybox"
	/bin/busybox --list | while read -r applet; do
		[[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
	done
	mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/sbin"
	# util-linux's setpriv: busybox's cannot change the user.
	copy_with_libs "$root" /usr/bin/setpriv
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
	printf 'root:x:0:\n' >"$root/etc/group"
	echo "$root"
}

# build NAME TAG ENTRYPOINT-ARGS... builds the image from $WORK/NAME/rootfs.
build() {
	local name=$1 tag=$2 dir=$WORK/$1
	shift 2
	{
		echo "FROM scratch"
		echo "COPY rootfs/ /"
		echo "ENV PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin"
		echo "LABEL org.opencontainers.image.description=\"pamtrail compose-test stand-in; not for use\""
		printf 'ENTRYPOINT ["/entrypoint.sh"]\n'
	} >"$dir/Dockerfile"
	"$DOCKER" build -q -t "$tag" "$dir" >/dev/null
	log "$tag: $("$DOCKER" image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
}

build_pg() {
	ensure_packages postgresql-15 busybox-static
	local root bin=/usr/lib/postgresql/15/bin
	root=$(base_rootfs pg)
	copy_with_libs "$root" "$bin/postgres" "$bin/initdb" "$bin/pg_ctl" "$bin/pg_isready" "$bin/psql"
	copy_with_libs "$root" /usr/lib/postgresql/15/lib/*.so
	mkdir -p "$root/usr/share/postgresql" "$root/usr/share"
	cp -a /usr/share/postgresql/15 "$root/usr/share/postgresql/"
	cp -a /usr/share/zoneinfo "$root/usr/share/"
	for f in pg_isready psql; do ln -sf "$bin/$f" "$root/usr/bin/$f"; done
	echo 'postgres:x:999:999::/var/lib/postgresql:/bin/sh' >>"$root/etc/passwd"
	echo 'postgres:x:999:' >>"$root/etc/group"
	mkdir -p "$root/var/lib/postgresql/data" "$root/var/run/postgresql"
	install -m 0755 "$HERE/pg-entrypoint.sh" "$root/entrypoint.sh"
	build pg pamtrail-standin-pg:15
	echo "PAMTRAIL_PG_IMAGE=pamtrail-standin-pg:15"
}

build_sshd() {
	ensure_packages openssh-server busybox-static
	local root
	root=$(base_rootfs sshd)
	copy_with_libs "$root" /usr/sbin/sshd /usr/lib/openssh/sftp-server
	echo 'sshd:x:101:65534::/run/sshd:/usr/sbin/nologin' >>"$root/etc/passwd"
	mkdir -p "$root/run/sshd" "$root/etc/ssh" "$root/config/ssh_host_keys"
	chmod 0755 "$root/run/sshd"
	install -m 0755 "$HERE/sshd-entrypoint.sh" "$root/entrypoint.sh"
	build sshd pamtrail-standin-sshd:9
	echo "PAMTRAIL_SSHD_IMAGE=pamtrail-standin-sshd:9"
}

build_es() {
	ensure_packages busybox-static curl
	# The same distribution and JDK deploy/local runs (installed by
	# `services.sh up elasticsearch`, which make test runs first).
	es_select
	es_install "$ES_VERSION"
	local root home=/usr/share/elasticsearch so
	root=$(base_rootfs es)
	mkdir -p "$root$home" "$root/opt"
	cp -a "$ES_ROOT/$ES_VERSION/." "$root$home/"
	cp -a "$ES_JAVA" "$root/opt/jdk"
	copy_with_libs "$root" /bin/bash /usr/bin/curl
	# The JDK and Elasticsearch's native libraries load their dependencies
	# from the system library directories, as on the host.
	{
		find "$root/opt/jdk" "$root$home/lib/platform/linux-x64" -name '*.so'
		echo "$root/opt/jdk/bin/java"
	} | while read -r so; do
		ldd "$so" 2>/dev/null | awk '/=> \//{print $3} /^\t\//{print $1}' | while read -r lib; do
			[[ -e $root$lib ]] || { mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib"; }
		done
	done
	echo 'elasticsearch:x:1000:0::/usr/share/elasticsearch:/bin/sh' >>"$root/etc/passwd"
	mkdir -p "$root$home/data" "$root$home/logs"
	chown -R 1000:0 "$root$home"
	install -m 0755 "$HERE/es-entrypoint.sh" "$root/entrypoint.sh"
	build es "pamtrail-standin-es:$ES_VERSION"
	echo "PAMTRAIL_ES_IMAGE=pamtrail-standin-es:$ES_VERSION"
}

(($# > 0)) || set -- es pg sshd
for what in "$@"; do
	case $what in
	es | pg | sshd) "build_$what" ;;
	*) die "unknown stand-in '$what' (es, pg, sshd)" ;;
	esac
done
