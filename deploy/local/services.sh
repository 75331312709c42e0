#!/usr/bin/env bash
# Local services for pamtrail development, tests and benchmarks: PostgreSQL,
# MariaDB, Elasticsearch, an OpenSSH target and pgbouncer run without Docker,
# all on 127.0.0.1 with state under ${PAMTRAIL_HOME:-<repo>/.pamtrail}; the
# Docker engine is there for the images and deploy/compose/. See README.md.
set -euo pipefail
# Run the last element of a pipeline in this shell, so `die` inside it really
# aborts the script instead of only a subshell.
shopt -s lastpipe

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/local/lib.sh
. "$SCRIPT_DIR/lib.sh"
# shellcheck source=deploy/local/tls.sh
. "$SCRIPT_DIR/tls.sh"
# shellcheck source=deploy/local/postgres.sh
. "$SCRIPT_DIR/postgres.sh"
# shellcheck source=deploy/local/pgbouncer.sh
. "$SCRIPT_DIR/pgbouncer.sh"
# shellcheck source=deploy/local/sshd.sh
. "$SCRIPT_DIR/sshd.sh"
# shellcheck source=deploy/local/mariadb.sh
. "$SCRIPT_DIR/mariadb.sh"
# shellcheck source=deploy/local/elasticsearch.sh
. "$SCRIPT_DIR/elasticsearch.sh"
# shellcheck source=deploy/local/docker.sh
. "$SCRIPT_DIR/docker.sh"

# Start order: pgbouncer needs postgres; Elasticsearch is last because it is
# the slowest of the native ones and the others are then usable while waiting
# for it; docker (the image builds and the compose test) comes after.
ALL_SERVICES=(postgres pgbouncer mariadb sshd elasticsearch es-cluster docker)
DEFAULT_UP=(postgres elasticsearch)

usage() {
	cat <<-EOF
		usage: $0 <command> [service...]

		commands:
		  up [service...]    start services (default: ${DEFAULT_UP[*]}); idempotent
		  down [service...]  stop services (default: all); data is kept
		  status             show what is provisioned and running
		  env                print the export lines of $ENV_FILE

		services: ${ALL_SERVICES[*]} all
	EOF
}

# resolve_services expands "all", rejects unknown names and returns the
# selection in start order (or reverse order for stopping) without duplicates.
resolve_services() {
	local direction=$1
	shift
	local -A wanted=()
	local name
	for name in "$@"; do
		case $name in
		all) for n in "${ALL_SERVICES[@]}"; do wanted[$n]=1; done ;;
		postgres | pgbouncer | mariadb | sshd | elasticsearch | es-cluster | docker) wanted[$name]=1 ;;
		*) die "unknown service '$name' (want one of: ${ALL_SERVICES[*]} all)" ;;
		esac
	done
	local ordered=("${ALL_SERVICES[@]}")
	if [[ $direction == stop ]]; then
		ordered=(docker es-cluster elasticsearch sshd mariadb pgbouncer postgres)
	fi
	for name in "${ordered[@]}"; do
		[[ -n ${wanted[$name]:-} ]] && echo "$name"
	done
	return 0
}

# lock serialises concurrent invocations (parallel make targets, test
# packages) so two of them never initdb or start the same daemon at once.
lock() {
	# Daemons are started through detach() so they never inherit this descriptor.
	exec 9>"$PAMTRAIL_HOME/.lock"
	chmod 0600 "$PAMTRAIL_HOME/.lock"
	flock -w 900 9 || die "another services.sh holds $PAMTRAIL_HOME/.lock for more than 15 minutes"
}

# lock_not_leaked fails when a process this invocation started still has the
# lock file open: a daemon that inherited descriptor 9, or a subshell of ours
# waiting on one. Either would hold the lock for the daemon's whole life and
# make every later services.sh wait 15 minutes and fail.
lock_not_leaked() {
	local lockfile=$PAMTRAIL_HOME/.lock fd pid ppid comm leaks=()
	for fd in /proc/[0-9]*/fd/*; do
		[[ $(readlink "$fd" 2>/dev/null) == "$lockfile" ]] || continue
		pid=${fd#/proc/}
		pid=${pid%%/*}
		[[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
		ppid=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
		comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
		# Other services.sh invocations waiting their turn are bash or flock
		# processes with parents of their own.
		if [[ $ppid == "$$" || ($comm != bash && $comm != flock) ]]; then
			leaks+=("$pid ($comm)")
		fi
	done
	((${#leaks[@]} == 0)) || die "processes still hold $lockfile after services.sh: ${leaks[*]} (a daemon must be started through detach, without a waiting subshell)"
}

cmd_up() {
	local services
	(($# > 0)) || set -- "${DEFAULT_UP[@]}"
	resolve_services start "$@" | mapfile -t services
	# pgbouncer reads what postgres_up records; converging postgres first is
	# cheap when it is already up.
	if [[ " ${services[*]} " == *" pgbouncer "* && " ${services[*]} " != *" postgres "* ]]; then
		services=(postgres "${services[@]}")
	fi
	require_root "up $*"
	ensure_home
	lock
	tls_up
	local name
	for name in "${services[@]}"; do
		"${name//-/_}_up"
	done
	write_services_env
	lock_not_leaked
	log "environment written to $ENV_FILE (source it, or: $0 env)"
}

cmd_down() {
	local services name
	(($# > 0)) || set -- all
	resolve_services stop "$@" | mapfile -t services
	require_root "down $*"
	[[ -d $PAMTRAIL_HOME ]] || {
		log "nothing to stop: $PAMTRAIL_HOME does not exist"
		return 0
	}
	lock
	for name in "${services[@]}"; do
		"${name//-/_}_down"
	done
}

cmd_status() {
	local name
	# Pidfiles live in directories only root and the service users can read.
	require_root status
	for name in "${ALL_SERVICES[@]}"; do
		"${name//-/_}_status"
	done
	if [[ -d $PAMTRAIL_HOME && $(stat -c %a "$PAMTRAIL_HOME") != 711 ]]; then
		log "warning: $PAMTRAIL_HOME is mode $(stat -c %a "$PAMTRAIL_HOME"), not 711: the postgres and pamtrail-es users cannot reach their data; run: $0 up"
	fi
}

cmd_env() {
	[[ -f $ENV_FILE ]] || die "$ENV_FILE does not exist; run: $0 up"
	cat "$ENV_FILE"
}

main() {
	local cmd=${1:-}
	(($# > 0)) && shift
	case $cmd in
	up) cmd_up "$@" ;;
	down) cmd_down "$@" ;;
	status) cmd_status ;;
	env) cmd_env ;;
	-h | --help | help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
