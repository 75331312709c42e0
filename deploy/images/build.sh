#!/usr/bin/env bash
# Builds the pamtrail:<version> and otelcol-pamtrail:<version> images FROM
# scratch, so nothing is pulled from a registry: each context is a static
# binary, /etc/passwd and /etc/group naming the numeric user 65532, the host's
# CA bundle (Debian's ca-certificates) and an empty state directory owned by
# that user. Usage: build.sh VERSION [COLLECTOR_BINARY]
# (the collector binary defaults to bin/otelcol-pamtrail, built by ocb with
# CGO disabled). Prints each image's size.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=${1:?usage: build.sh VERSION [COLLECTOR_BINARY]}
COLLECTOR_BIN=${2:-bin/otelcol-pamtrail}
DOCKER=${PAMTRAIL_DOCKER:-/usr/bin/docker}
CONTEXT_ROOT=_build/images
REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
IMAGE_UID=65532
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

log() { printf '[images] %s\n' "$*" >&2; }
die() {
	printf '[images] error: %s\n' "$*" >&2
	exit 1
}

[[ -s $CA_BUNDLE ]] || die "$CA_BUNDLE missing: apt-get install ca-certificates"
[[ -x $COLLECTOR_BIN ]] || die "$COLLECTOR_BIN missing: make bin/otelcol-pamtrail"
# A scratch image has no dynamic loader: refuse a binary that needs one.
if ldd "$COLLECTOR_BIN" >/dev/null 2>&1; then
	die "$COLLECTOR_BIN is dynamically linked; rebuild it with CGO_ENABLED=0"
fi

# context NAME STATE_DIR prepares _build/images/NAME with rootfs/ and state/.
context() {
	local dir=$CONTEXT_ROOT/$1
	rm -rf "$dir"
	mkdir -p "$dir/rootfs/etc/ssl/certs" "$dir/rootfs/usr/local/bin" "$dir/state"
	chmod 0700 "$dir/state"
	printf 'root:x:0:0:root:/:/sbin/nologin\n%s:x:%d:%d::%s:/sbin/nologin\n' "$1" "$IMAGE_UID" "$IMAGE_UID" "$2" >"$dir/rootfs/etc/passwd"
	printf 'root:x:0:\n%s:x:%d:\n' "$1" "$IMAGE_UID" >"$dir/rootfs/etc/group"
	cp "$CA_BUNDLE" "$dir/rootfs/etc/ssl/certs/ca-certificates.crt"
	echo "$dir"
}

static_build() {
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$1" "$2"
}

build_image() {
	local name=$1 dir=$2
	log "building $name:$VERSION"
	"$DOCKER" build -q -f "deploy/images/$name.Dockerfile" -t "$name:$VERSION" \
		--build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" "$dir" >/dev/null
	log "$name:$VERSION: $("$DOCKER" image inspect -f '{{.Size}}' "$name:$VERSION" | awk '{printf "%.1f MB", $1/1e6}')"
}

gw=$(context pamtrail /var/lib/pamtrail)
static_build "$gw/rootfs/usr/local/bin/pamtrail" ./gateway/cmd/pamtrail
build_image pamtrail "$gw"

col=$(context otelcol-pamtrail /var/lib/otelcol-pamtrail)
cp "$COLLECTOR_BIN" "$col/rootfs/usr/local/bin/otelcol-pamtrail"
static_build "$col/rootfs/usr/local/bin/healthprobe" ./deploy/images/healthprobe
mkdir -p "$col/rootfs/etc/otelcol-pamtrail"
cp deploy/images/otelcol-pamtrail.yaml "$col/rootfs/etc/otelcol-pamtrail/config.yaml"
build_image otelcol-pamtrail "$col"
