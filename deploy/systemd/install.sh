#!/usr/bin/env bash
# Installs the gateway and the collector as hardened systemd services on this
# host: the binaries from bin/ (make build), the units, and under /etc the
# configs and keyrings that are not there yet (never overwritten). Starts
# both when systemd runs this host. DESTDIR installs into another root (the
# tests verify the result there).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
ROOT=${DESTDIR:-}
log() { printf '[systemd] %s\n' "$*" >&2; }

for bin in pamtrail otelcol-pamtrail; do
	[[ -x $REPO/bin/$bin ]] || { log "error: $REPO/bin/$bin missing: run make build"; exit 1; }
done
install -d -m 0755 "$ROOT/usr/local/bin" "$ROOT/etc/systemd/system"
install -d -m 0700 "$ROOT/etc/pamtrail" "$ROOT/etc/otelcol-pamtrail"
install -m 0755 "$REPO/bin/pamtrail" "$REPO/bin/otelcol-pamtrail" "$ROOT/usr/local/bin/"
install -m 0644 "$REPO/deploy/systemd/pamtrail-gateway.service" "$REPO/deploy/systemd/otelcol-pamtrail.service" "$ROOT/etc/systemd/system/"

# install_once SRC DST MODE: configs are the operator's once installed.
install_once() {
	if [[ -e $2 ]]; then
		log "keeping $2"
	else
		install -m "$3" "$1" "$2"
		log "installed $2"
	fi
}
install_once "$REPO/deploy/systemd/gateway.yaml" "$ROOT/etc/pamtrail/gateway.yaml" 0600
install_once "$REPO/deploy/images/otelcol-pamtrail.yaml" "$ROOT/etc/otelcol-pamtrail/config.yaml" 0600
if [[ ! -e $ROOT/etc/otelcol-pamtrail/env ]]; then
	printf 'PAMTRAIL_ES_URL=http://127.0.0.1:9200\n# PAMTRAIL_ES_USER=pamtrail_writer\n# PAMTRAIL_ES_PASSWORD=\n' >"$ROOT/etc/otelcol-pamtrail/env"
	chmod 0600 "$ROOT/etc/otelcol-pamtrail/env"
	log "installed $ROOT/etc/otelcol-pamtrail/env (set PAMTRAIL_ES_URL)"
fi
for keyring in "$ROOT/etc/pamtrail/spool.keys" "$ROOT/etc/otelcol-pamtrail/queue.keys"; do
	[[ -e $keyring ]] || "$REPO/bin/pamtrail" keygen --out "$keyring" >/dev/null
done

if [[ -z $ROOT && -d /run/systemd/system ]]; then
	systemctl daemon-reload
	systemctl enable --now otelcol-pamtrail.service pamtrail-gateway.service
	log "started; readiness: curl -s 127.0.0.1:9464/healthz"
else
	log "installed; systemd is not running here: start the units where it is"
fi
