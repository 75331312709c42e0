# shellcheck shell=bash
# Shared helpers for the deploy/local service scripts. Sourced by services.sh,
# never executed on its own.

PAMTRAIL_REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PAMTRAIL_HOME=${PAMTRAIL_HOME:-$PAMTRAIL_REPO_ROOT/.pamtrail}
SECRETS_DIR=$PAMTRAIL_HOME/secrets
# Each service writes its own fragment at `up`; services.env is their
# concatenation. Fragments persist across runs so that `up sshd` later does not
# forget what an earlier `up postgres` (maybe against an external server) set.
ENV_FRAGMENTS_DIR=$PAMTRAIL_HOME/env.d
ENV_FILE=$PAMTRAIL_HOME/services.env
# Everything binds here; never a wildcard address.
LOCAL_HOST=127.0.0.1

log() { printf '[%s] %s\n' "${LOG_TAG:-services}" "$*" >&2; }

die() {
	printf '[%s] error: %s\n' "${LOG_TAG:-services}" "$*" >&2
	exit 1
}

require_root() {
	[[ $(id -u) -eq 0 ]] || die "must run as root: it installs packages, creates service users and starts daemons as them (try: sudo $0 $*)"
}

# is_installed reports whether a Debian package is fully installed; `dpkg -s`
# alone also succeeds for removed-but-not-purged packages.
is_installed() {
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

APT_UPDATED=0

# ensure_packages installs the missing packages among its arguments, running
# `apt-get update` at most once per invocation and only when something is missing.
ensure_packages() {
	local missing=() pkg
	for pkg in "$@"; do
		is_installed "$pkg" || missing+=("$pkg")
	done
	((${#missing[@]} == 0)) && return 0
	log "installing Debian packages: ${missing[*]}"
	# pamtrail runs its own cluster; Debian's postinst would otherwise create
	# (and, where services may start, run) a default one on port 5432.
	if [[ " ${missing[*]} " == *" postgresql"* ]]; then
		mkdir -p /etc/postgresql-common/createcluster.d
		echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/pamtrail.conf
	fi
	if ((APT_UPDATED == 0)); then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
		APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
}

# ensure_system_user creates a locked system account with no login shell, used
# only to run a daemon that refuses to run as root.
ensure_system_user() {
	local name=$1
	id -u "$name" >/dev/null 2>&1 && return 0
	log "creating system user $name"
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin "$name" || die "useradd $name failed"
}

# ensure_dir creates a directory with an exact mode and owner (user or
# user:group), fixing both if the directory already exists.
ensure_dir() {
	local path=$1 mode=$2 owner=${3:-root}
	mkdir -p "$path" || die "cannot create directory $path"
	chmod "$mode" "$path"
	chown "$owner" "$path"
}

# ensure_home creates PAMTRAIL_HOME. It is 0711: service users may traverse it
# to reach their own 0700 subdirectories but cannot list it or read secrets.
ensure_home() {
	ensure_dir "$PAMTRAIL_HOME" 0711
	ensure_dir "$SECRETS_DIR" 0700
	ensure_dir "$ENV_FRAGMENTS_DIR" 0700
}

# require_traversable makes sure an OS user can reach a path: daemons run as
# postgres or pamtrail-es (they refuse root) and cannot start under e.g. a
# 0700 /root. A checkout under such a directory is common (CI clones, root's
# home), so the missing search bit (o+x: traverse only, no listing or
# reading) is added to the ancestors that lack it, each one logged.
require_traversable() {
	local user=$1 path=$2 dir
	runuser -u "$user" -- test -x "$path" && return 0
	# Walk from / down: the first ancestor the user cannot search is the one
	# to fix; those below it are checked again once it is searchable.
	dir=""
	local part
	IFS=/ read -ra parts <<<"${path#/}"
	for part in "${parts[@]}"; do
		dir=$dir/$part
		[[ -d $dir ]] || break
		if ! runuser -u "$user" -- test -x "$dir" 2>/dev/null; then
			log "adding o+x (traverse only) to $dir so that $user can reach $path"
			chmod o+x "$dir" || die "cannot chmod o+x $dir"
		fi
	done
	runuser -u "$user" -- test -x "$path" ||
		die "user $user cannot reach $path: set PAMTRAIL_HOME to a directory under a world-searchable path (e.g. /var/lib/pamtrail)"
}

# ensure_secret generates a random password once. Hex keeps it safe to embed in
# SQL literals, connection strings and config files without quoting rules.
ensure_secret() {
	local path=$1
	[[ -s $path ]] && return 0
	(
		umask 077
		openssl rand -hex 24 | tr -d '\n' >"$path.tmp" && mv -f "$path.tmp" "$path"
	) || die "cannot write secret $path"
}

# write_file_if_changed writes stdin to path with a mode and owner, returning 0
# if the content changed (so callers can reload) and 1 if it was identical.
write_file_if_changed() {
	local path=$1 mode=$2 owner=${3:-root} tmp
	tmp=$(mktemp "$path.XXXXXX") || die "cannot create a temporary file next to $path"
	cat >"$tmp"
	chmod "$mode" "$tmp"
	chown "$owner" "$tmp"
	if [[ -f $path ]] && cmp -s "$tmp" "$path"; then
		rm -f "$tmp"
		return 1
	fi
	mv -f "$tmp" "$path"
	return 0
}

# detach runs a command that leaves a daemon behind. The daemon must not
# inherit descriptor 9, on which services.sh holds its flock, or it would hold the lock for its whole life and
# every later services.sh would wait for it.
detach() {
	"$@" 9>&-
}

# port_open reports whether something accepts TCP connections on host:port.
port_open() {
	timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# require_port_free fails clearly when another process owns a port we are about
# to bind, instead of letting the daemon fail with a buried log line.
require_port_free() {
	local port=$1 what=$2 hint=$3
	if port_open "$LOCAL_HOST" "$port"; then
		die "port $LOCAL_HOST:$port needed by $what is already in use by another process; $hint"
	fi
}

# wait_until polls a command until it succeeds or the deadline passes.
wait_until() {
	local timeout_s=$1 what=$2
	shift 2
	local deadline=$((SECONDS + timeout_s))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || {
			log "timed out after ${timeout_s}s waiting for $what"
			return 1
		}
		sleep 0.25
	done
}

# pid_alive reports whether a pidfile names a live process whose command line
# contains a marker, so a recycled pid is not mistaken for our daemon.
pid_alive() {
	local pidfile=$1 marker=$2 pid
	[[ -s $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"
}

# stop_pidfile sends SIGTERM and waits for the process to exit, escalating to
# SIGKILL only after the grace period.
stop_pidfile() {
	local pidfile=$1 marker=$2 what=$3 grace=${4:-30} pid
	if ! pid_alive "$pidfile" "$marker"; then
		rm -f "$pidfile"
		log "$what is not running"
		return 0
	fi
	pid=$(<"$pidfile")
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_until "$grace" "$what (pid $pid) to exit" pid_gone "$pid"; then
		log "$what did not stop after ${grace}s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		wait_until 10 "$what (pid $pid) to die" pid_gone "$pid" || die "cannot stop $what (pid $pid)"
	fi
	rm -f "$pidfile"
	log "$what stopped"
}

# wait_listening waits for a freshly started daemon to accept connections,
# giving up early once its pidfile names a dead process.
wait_listening() {
	local timeout_s=$1 what=$2 pidfile=$3 marker=$4 port=$5
	local deadline=$((SECONDS + timeout_s))
	until port_open "$LOCAL_HOST" "$port"; do
		if [[ -s $pidfile ]] && ! pid_alive "$pidfile" "$marker"; then
			log "$what exited during startup"
			return 1
		fi
		((SECONDS < deadline)) || {
			log "timed out after ${timeout_s}s waiting for $what to listen on $LOCAL_HOST:$port"
			return 1
		}
		sleep 0.1
	done
}

pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# shell_quote prints a value as one shell word; plain values stay unquoted so
# the file also reads well and works with simple `KEY=value` parsers.
shell_quote() {
	local v=$1
	if [[ $v =~ ^[A-Za-z0-9_./:@%+,=-]*$ ]]; then
		printf '%s' "$v"
	else
		printf "'%s'" "${v//\'/\'\\\'\'}"
	fi
}

# env_line prints one `export KEY=value` line.
env_line() {
	printf 'export %s=%s\n' "$1" "$(shell_quote "$2")"
}

# write_env_fragment stores a service's export lines (read from stdin).
write_env_fragment() {
	write_file_if_changed "$ENV_FRAGMENTS_DIR/$1.env" 0600 || true
}

# env_fragment_value reads one variable from a service's fragment. It sources
# the fragment in a subshell so our own environment is not changed (that would
# make e.g. postgres look "external" for the rest of the run).
env_fragment_value() {
	(
		# shellcheck disable=SC1090
		. "$ENV_FRAGMENTS_DIR/$1.env" && printf '%s' "${!2:-}"
	)
}

# write_services_env concatenates the fragments, in a fixed order, into
# services.env (0600: it holds the PostgreSQL admin password).
write_services_env() {
	local name
	{
		echo "# Generated by deploy/local/services.sh; do not edit. Source it: . $ENV_FILE"
		env_line PAMTRAIL_HOME "$PAMTRAIL_HOME"
		for name in tls postgres pgbouncer mariadb sshd elasticsearch es-cluster docker; do
			[[ -f $ENV_FRAGMENTS_DIR/$name.env ]] && cat "$ENV_FRAGMENTS_DIR/$name.env"
		done
	} | write_file_if_changed "$ENV_FILE" 0600 || true
}

# tail_log prints the end of a daemon log to stderr to explain a failed start.
tail_log() {
	local file=$1
	if [[ -s $file ]]; then
		log "last lines of $file:"
		tail -n "${2:-40}" "$file" | sed 's/^/    /' >&2
	fi
}
