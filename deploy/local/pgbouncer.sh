# shellcheck shell=bash disable=SC2034 # local LOG_TAG is read by log() via dynamic scope
# pgbouncer in front of the PostgreSQL above: the peer the gateway's
# PostgreSQL engine is benchmarked against. Session pooling, because the gateway
# is a session-level proxy and transaction pooling would not be a fair match.

PGB_DIR=$PAMTRAIL_HOME/pgbouncer
PGB_CONF=$PGB_DIR/pgbouncer.ini
PGB_USERLIST=$PGB_DIR/userlist.txt
PGB_PIDFILE=$PGB_DIR/pgbouncer.pid
PGB_LOG=$PGB_DIR/pgbouncer.log

pgbouncer_port() { echo "${PAMTRAIL_PGBOUNCER_PORT:-6433}"; }

pgbouncer_running() { pid_alive "$PGB_PIDFILE" pgbouncer; }

pgbouncer_up() {
	local LOG_TAG=pgbouncer
	ensure_packages pgbouncer
	# The upstream's address and admin account come from what postgres_up
	# recorded, whether the server is ours or external.
	[[ -f $ENV_FRAGMENTS_DIR/postgres.env ]] || die "postgres is not provisioned; run: $0 up postgres"
	local pg_host pg_port pg_user pg_password port changed=0
	pg_host=$(env_fragment_value postgres PAMTRAIL_PG_HOST)
	pg_port=$(env_fragment_value postgres PAMTRAIL_PG_PORT)
	pg_user=$(env_fragment_value postgres PAMTRAIL_PG_ADMIN_USER)
	pg_password=$(env_fragment_value postgres PAMTRAIL_PG_ADMIN_PASSWORD)
	port=$(pgbouncer_port)
	ensure_dir "$PGB_DIR" 0700 postgres:postgres
	require_traversable postgres "$PGB_DIR"

	local userlist
	userlist=$(pgbouncer_userlist "$pg_host" "$pg_port" "$pg_user" "$pg_password")
	if write_file_if_changed "$PGB_USERLIST" 0600 postgres:postgres <<<"$userlist"; then
		changed=1
	fi
	if pgbouncer_render_conf "$port" "$pg_host" "$pg_port" |
		write_file_if_changed "$PGB_CONF" 0600 postgres:postgres; then
		changed=1
	fi

	if pgbouncer_running; then
		if ((changed)); then
			log "configuration changed; restarting"
			stop_pidfile "$PGB_PIDFILE" pgbouncer pgbouncer
		else
			log "already running"
			pgbouncer_write_env "$port"
			return 0
		fi
	fi
	require_port_free "$port" pgbouncer "set PAMTRAIL_PGBOUNCER_PORT to a free port (Debian's own pgbouncer service uses 6432)"
	log "starting on $LOCAL_HOST:$port"
	# pgbouncer refuses to run as root; it shares the postgres OS user, which
	# must own the log it appends to after daemonizing.
	touch "$PGB_LOG"
	chown postgres:postgres "$PGB_LOG"
	chmod 0600 "$PGB_LOG"
	rm -f "$PGB_PIDFILE"
	if ! detach runuser -u postgres -- pgbouncer -d -q "$PGB_CONF" 2>"$PGB_DIR/startup.log" ||
		! wait_listening 30 pgbouncer "$PGB_PIDFILE" pgbouncer "$port"; then
		tail_log "$PGB_DIR/startup.log"
		tail_log "$PGB_LOG"
		die "pgbouncer did not start; see $PGB_LOG"
	fi
	pgbouncer_write_env "$port"
	log "ready on $LOCAL_HOST:$port"
}

# pgbouncer_userlist emits the demo role's SCRAM verifier rather than its
# password: pgbouncer can check clients against it and, because the client's
# proof is derived from the same verifier, reuse it to log in upstream.
pgbouncer_userlist() {
	local host=$1 port=$2 user=$3 password=$4 verifier
	verifier=$(PGPASSWORD=$password PGCONNECT_TIMEOUT=10 "$(pg_bindir)/psql" -X -q -At \
		-h "$host" -p "$port" -U "$user" -d postgres \
		-c "SELECT rolpassword FROM pg_authid WHERE rolname = '$PG_DEMO_ROLE'") ||
		die "cannot read the SCRAM verifier of $PG_DEMO_ROLE as $user on $host:$port"
	[[ $verifier == SCRAM-SHA-256\$* ]] || die "$PG_DEMO_ROLE has no SCRAM-SHA-256 password on $host:$port"
	printf '"%s" "%s"' "$PG_DEMO_ROLE" "$verifier"
}

pgbouncer_render_conf() {
	local port=$1 pg_host=$2 pg_port=$3
	cat <<-EOF
		; Managed by deploy/local/pgbouncer.sh; rewritten on every 'up'.
		[databases]
		$PG_DEMO_DB = host=$pg_host port=$pg_port dbname=$PG_DEMO_DB

		[pgbouncer]
		listen_addr = $LOCAL_HOST
		listen_port = $port
		unix_socket_dir = $PGB_DIR
		auth_type = scram-sha-256
		auth_file = $PGB_USERLIST
		pool_mode = session
		; Sized for benchmarks; stays under PostgreSQL's max_connections = 300.
		max_client_conn = 500
		default_pool_size = 200
		; pgbench and JDBC send it at startup.
		ignore_startup_parameters = extra_float_digits
		; Plaintext to the server, like the client side, so the comparison
		; measures pooling and not an extra TLS hop.
		server_tls_sslmode = disable
		logfile = $PGB_LOG
		pidfile = $PGB_PIDFILE
	EOF
}

pgbouncer_write_env() {
	{
		env_line PAMTRAIL_PGBOUNCER_HOST "$LOCAL_HOST"
		env_line PAMTRAIL_PGBOUNCER_PORT "$1"
	} | write_env_fragment pgbouncer
}

pgbouncer_down() {
	local LOG_TAG=pgbouncer
	stop_pidfile "$PGB_PIDFILE" pgbouncer pgbouncer
}

pgbouncer_status() {
	if [[ ! -f $PGB_CONF ]]; then
		echo "pgbouncer    not provisioned"
	elif pgbouncer_running; then
		echo "pgbouncer    running  $LOCAL_HOST:$(sed -n 's/^listen_port = //p' "$PGB_CONF") (pid $(<"$PGB_PIDFILE"))"
	else
		echo "pgbouncer    stopped"
	fi
}
