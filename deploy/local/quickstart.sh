#!/usr/bin/env bash
# `make run`: bring up what is missing (PostgreSQL, Elasticsearch, the SSH
# target), install the Elasticsearch templates, create the demo keys, then run
# the collector and the gateway with examples/quickstart/ in the foreground
# until Ctrl-C.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
export PAMTRAIL_HOME=${PAMTRAIL_HOME:-$repo/.pamtrail}
qs=$PAMTRAIL_HOME/quickstart
gw=$PAMTRAIL_HOME/gateway
mkdir -p "$qs" "$gw" "$PAMTRAIL_HOME/collector/queue"
# Not PAMTRAIL_HOME itself: services.sh keeps it 0711 so the postgres and
# pamtrail-es users can reach their data; 0700 crashes running PostgreSQL and
# Elasticsearch.
chmod 700 "$qs" "$gw"

deploy/local/services.sh up postgres mariadb elasticsearch sshd
# shellcheck disable=SC1091
source "$PAMTRAIL_HOME/services.env"

[ -f "$gw/spool.keys" ] || bin/pamtrail keygen --out "$gw/spool.keys"
# The gateway signs each session's hash chain; verifiers find the public
# keys in the pamtrail-keys index (`pamtrail sessions verify`).
[ -f "$gw/signing.key" ] || bin/pamtrail keygen --signing --out "$gw/signing.key"
bin/pamtrail setup elasticsearch --url "$PAMTRAIL_ES_URL" --signing-keys "$gw/signing.key.pub"
# The collector's persistent queue and session state are sealed too.
[ -f "$PAMTRAIL_HOME/collector/queue.keys" ] || bin/pamtrail keygen --out "$PAMTRAIL_HOME/collector/queue.keys"
if [ ! -f "$qs/alice_ed25519" ]; then
  ssh-keygen -q -t ed25519 -N '' -C alice@pamtrail-quickstart -f "$qs/alice_ed25519"
fi
# The demo-ssh account pins the target's host key; services.sh knows it.
printf '%s\n' "$PAMTRAIL_SSHD_KNOWN_HOSTS" > "$qs/demo-ssh.known_hosts"
chmod 600 "$qs/demo-ssh.known_hosts"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping collector and gateway..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

GOGC=400 GOMEMLIMIT=1GiB PAMTRAIL_COLLECTOR_STORAGE=$PAMTRAIL_HOME/collector/queue \
  bin/otelcol-pamtrail --config examples/quickstart/collector.yaml >"$PAMTRAIL_HOME/collector.log" 2>&1 &
pids+=($!)
deadline=$((SECONDS + 60))
until curl -fsS http://127.0.0.1:13133/ >/dev/null 2>&1; do
  if ! kill -0 "${pids[0]}" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
    echo "collector failed to start; last lines of $PAMTRAIL_HOME/collector.log:" >&2
    tail -n 30 "$PAMTRAIL_HOME/collector.log" >&2
    exit 1
  fi
  sleep 0.5
done

bin/pamtrail gateway --config examples/quickstart/gateway.yaml &
pids+=($!)
deadline=$((SECONDS + 30))
until (exec 3<>/dev/tcp/127.0.0.1/6432) 2>/dev/null && [ -f "$gw/ssh_host_ed25519_key" ]; do
  if ! kill -0 "${pids[1]}" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
    echo "gateway failed to start (see its log above)" >&2
    exit 1
  fi
  sleep 0.2
done
# A known_hosts file for the gateway's own SSH host key (made on first start).
printf '[127.0.0.1]:2222 %s\n' "$(ssh-keygen -y -f "$gw/ssh_host_ed25519_key")" > "$qs/gateway_known_hosts"

cat <<MSG

pamtrail quickstart is running (Ctrl-C stops the collector and the gateway).

  PostgreSQL through the gateway (demo-only password):
    psql "postgres://alice:alice-demo-password@127.0.0.1:6432/demo-postgres" -c "select 1"

  MySQL/MariaDB through the gateway (same demo-only password):
    mariadb -h 127.0.0.1 -P 6033 -u alice -palice-demo-password -D demo-mysql -e "select 1"

  SSH through the gateway:
    ssh -i $qs/alice_ed25519 -p 2222 -o UserKnownHostsFile=$qs/gateway_known_hosts demo-ssh@127.0.0.1

  Review:
    bin/pamtrail sessions list
    curl -s '$PAMTRAIL_ES_URL/pamtrail-events*/_search?q=select&pretty'

  Collector log: $PAMTRAIL_HOME/collector.log
MSG
wait -n "${pids[@]}"
