# shellcheck shell=bash disable=SC2034 # local LOG_TAG is read by log() via dynamic scope
# PostgreSQL: a private cluster (not Debian's pg_ctlcluster one) on 127.0.0.1,
# plus the roles and databases tests and the quickstart use. With
# PAMTRAIL_PG_HOST/PORT/ADMIN_USER/ADMIN_PASSWORD set, an existing server is
# used instead and only the roles and databases are created on it.

PG_DIR=$PAMTRAIL_HOME/postgres
PG_DATA=$PG_DIR/data
PG_SOCKET_DIR=$PG_DIR/run
PG_LOG=$PG_DIR/postgres.log
PG_ADMIN_ROLE=pamtrail_admin
PG_DEMO_ROLE=pamtrail_demo
PG_MD5_ROLE=pamtrail_md5
PG_PLAIN_ROLE=pamtrail_plain
PG_TRUST_ROLE=pamtrail_trust
PG_DEMO_DB=demo
PG_TEST_DB=pamtrail_test

pg_port() { echo "${PAMTRAIL_PG_PORT:-5432}"; }

# pg_external reports whether the user points us at their own server. A
# services.env we wrote ourselves marks its values PAMTRAIL_PG_SOURCE=local, so
# sourcing it before calling us again does not look like an external server.
pg_external() {
	[[ -n ${PAMTRAIL_PG_HOST:-} && -n ${PAMTRAIL_PG_PORT:-} && -n ${PAMTRAIL_PG_ADMIN_USER:-} &&
		-n ${PAMTRAIL_PG_ADMIN_PASSWORD:-} && ${PAMTRAIL_PG_SOURCE:-} != local ]]
}

# pg_bindir picks the newest PostgreSQL server installed by Debian.
pg_bindir() {
	local dir
	dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
	[[ -n $dir && -x $dir/initdb ]] || die "no PostgreSQL server binaries under /usr/lib/postgresql (package postgresql)"
	echo "$dir"
}

pg_as_postgres() { runuser -u postgres -- "$@"; }

pg_running() {
	[[ -f $PG_DATA/PG_VERSION ]] && pg_as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

postgres_up() {
	local LOG_TAG=postgres
	ensure_packages postgresql openssl
	PG_BIN=$(pg_bindir)
	ensure_secret "$SECRETS_DIR/$PG_DEMO_ROLE.password"
	ensure_secret "$SECRETS_DIR/$PG_MD5_ROLE.password"
	ensure_secret "$SECRETS_DIR/$PG_PLAIN_ROLE.password"

	local host port admin_user admin_password source
	if pg_external; then
		host=$PAMTRAIL_PG_HOST port=$PAMTRAIL_PG_PORT
		admin_user=$PAMTRAIL_PG_ADMIN_USER admin_password=$PAMTRAIL_PG_ADMIN_PASSWORD source=external
		log "using the existing server at $host:$port as $admin_user (PAMTRAIL_PG_* set)"
	else
		host=$LOCAL_HOST port=$(pg_port) admin_user=$PG_ADMIN_ROLE source=local
		ensure_secret "$SECRETS_DIR/$PG_ADMIN_ROLE.password"
		admin_password=$(<"$SECRETS_DIR/$PG_ADMIN_ROLE.password")
		pg_local_cluster_up "$port"
	fi
	pg_converge_roles "$host" "$port" "$admin_user" "$admin_password" "$source"

	{
		env_line PAMTRAIL_PG_SOURCE "$source"
		env_line PAMTRAIL_PG_HOST "$host"
		env_line PAMTRAIL_PG_PORT "$port"
		env_line PAMTRAIL_PG_ADMIN_USER "$admin_user"
		env_line PAMTRAIL_PG_ADMIN_PASSWORD "$admin_password"
		[[ $source == local ]] && env_line PAMTRAIL_PG_SOCKET_DIR "$PG_SOCKET_DIR"
		env_line PAMTRAIL_PG_TEST_DB "$PG_TEST_DB"
		env_line PAMTRAIL_PG_DEMO_DB "$PG_DEMO_DB"
		env_line PAMTRAIL_PG_DEMO_USER "$PG_DEMO_ROLE"
		env_line PAMTRAIL_PG_DEMO_PASSWORD_FILE "$SECRETS_DIR/$PG_DEMO_ROLE.password"
		env_line PAMTRAIL_PG_MD5_USER "$PG_MD5_ROLE"
		env_line PAMTRAIL_PG_MD5_PASSWORD_FILE "$SECRETS_DIR/$PG_MD5_ROLE.password"
		env_line PAMTRAIL_PG_PLAIN_USER "$PG_PLAIN_ROLE"
		env_line PAMTRAIL_PG_PLAIN_PASSWORD_FILE "$SECRETS_DIR/$PG_PLAIN_ROLE.password"
		env_line PAMTRAIL_PG_TRUST_USER "$PG_TRUST_ROLE"
	} | write_env_fragment postgres
	log "ready on $host:$port"
}

# pg_local_cluster_up creates, configures and starts our own cluster, leaving a
# running one alone unless its configuration changed.
pg_local_cluster_up() {
	local port=$1 changed_conf=1 changed_hba=1 changed_tls=0
	ensure_dir "$PG_DIR" 0700 postgres:postgres
	ensure_dir "$PG_SOCKET_DIR" 0700 postgres:postgres
	require_traversable postgres "$PG_DIR"
	# The socket path must fit in sun_path (107 bytes).
	((${#PG_SOCKET_DIR} + 16 < 108)) || die "socket directory $PG_SOCKET_DIR is too long for a unix socket; use a shorter PAMTRAIL_HOME"

	[[ -f $PG_DATA/PG_VERSION ]] || pg_initdb
	local data_version bin_version
	data_version=$(<"$PG_DATA/PG_VERSION")
	bin_version=$(basename "$(dirname "$PG_BIN")")
	[[ $data_version == "$bin_version" ]] ||
		die "$PG_DATA was created by PostgreSQL $data_version but the installed server is $bin_version; remove $PG_DIR to recreate it"

	pg_render_conf "$port" | write_file_if_changed "$PG_DATA/pamtrail.conf" 0600 postgres:postgres || changed_conf=0
	pg_render_hba | write_file_if_changed "$PG_DATA/pg_hba.conf" 0600 postgres:postgres || changed_hba=0
	# PostgreSQL insists the key belongs to its OS user with mode 0600, so it
	# gets its own copy rather than reading the root-owned tls directory.
	local name src
	for name in server.crt:$TLS_SERVER_CERT server.key:$TLS_SERVER_KEY ca.crt:$TLS_CA_CERT; do
		src=${name#*:}
		if write_file_if_changed "$PG_DATA/${name%%:*}" 0600 postgres:postgres <"$src"; then
			changed_tls=1
		fi
	done

	if pg_running; then
		if ((changed_conf)); then
			log "configuration changed; restarting"
			detach pg_as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 restart >/dev/null ||
				{ tail_log "$PG_LOG"; die "restart failed"; }
		elif ((changed_hba || changed_tls)); then
			log "pg_hba.conf or certificates changed; reloading"
			pg_as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" reload >/dev/null || die "reload failed"
		else
			log "already running"
		fi
		return 0
	fi

	require_port_free "$port" PostgreSQL \
		"set PAMTRAIL_PG_PORT to a free port, or stop that server (Debian's default cluster: pg_ctlcluster $bin_version main stop), or point PAMTRAIL_PG_HOST/PORT/ADMIN_USER/ADMIN_PASSWORD at it"
	log "starting on $LOCAL_HOST:$port"
	if ! detach pg_as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null; then
		tail_log "$PG_LOG"
		die "PostgreSQL did not start; see $PG_LOG"
	fi
}

# pg_initdb creates the cluster in a scratch directory and renames it into
# place, so an interrupted initdb never leaves a half-made data directory.
pg_initdb() {
	local scratch=$PG_DIR/data.initdb
	log "initdb $PG_DATA"
	rm -rf "$scratch"
	pg_as_postgres "$PG_BIN/initdb" -D "$scratch" --username=postgres --encoding=UTF8 --locale=C.UTF-8 \
		--auth-local=peer --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 ||
		{ tail_log "$PG_DIR/initdb.log"; die "initdb failed"; }
	echo "include_if_exists = 'pamtrail.conf'" >>"$scratch/postgresql.conf"
	mv "$scratch" "$PG_DATA"
}

pg_render_conf() {
	cat <<-EOF
		# Managed by deploy/local/postgres.sh; rewritten on every 'up'.
		listen_addresses = '$LOCAL_HOST'
		port = $1
		unix_socket_directories = '$PG_SOCKET_DIR'
		password_encryption = scram-sha-256
		# Benchmarks open many concurrent sessions through the gateway and pgbouncer.
		max_connections = 300
		shared_buffers = 256MB
		ssl = on
		ssl_cert_file = 'server.crt'
		ssl_key_file = 'server.key'
		ssl_ca_file = 'ca.crt'
	EOF
}

# pg_render_hba gives each test role the one auth method it exists to exercise;
# everyone else must use SCRAM over TCP. "host" matches TLS and plaintext alike.
pg_render_hba() {
	cat <<-EOF
		# Managed by deploy/local/postgres.sh; rewritten on every 'up'.
		# TYPE DATABASE USER            ADDRESS        METHOD
		local  all      postgres                       peer
		host   all      $PG_MD5_ROLE    $LOCAL_HOST/32   md5
		host   all      $PG_PLAIN_ROLE  $LOCAL_HOST/32   password
		host   all      $PG_TRUST_ROLE  $LOCAL_HOST/32   trust
		host   all      all             $LOCAL_HOST/32   scram-sha-256
	EOF
}

# pg_bootstrap_admin creates the superuser everything else connects as. It goes
# through the unix socket as the postgres OS user (peer auth), the only way in
# before any password exists.
pg_bootstrap_admin() {
	local port=$1 password
	password=$(<"$SECRETS_DIR/$PG_ADMIN_ROLE.password")
	{
		pg_quiet_sql_prelude
		cat <<-EOF
			SELECT 'CREATE ROLE $PG_ADMIN_ROLE' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_ADMIN_ROLE') \gexec
			ALTER ROLE $PG_ADMIN_ROLE WITH SUPERUSER LOGIN PASSWORD '$password';
		EOF
	} | pg_as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$port" -d postgres >/dev/null ||
		die "cannot create role $PG_ADMIN_ROLE through $PG_SOCKET_DIR"
}

# pg_quiet_sql_prelude keeps passwords out of the server log even if a
# statement fails. Only superusers may change these; others keep the defaults.
pg_quiet_sql_prelude() {
	cat <<-'EOF'
		DO $$ BEGIN
		  PERFORM set_config('log_statement', 'none', false);
		  PERFORM set_config('log_min_error_statement', 'panic', false);
		EXCEPTION WHEN insufficient_privilege THEN NULL;
		END $$;
		SET password_encryption = 'scram-sha-256';
	EOF
}

# pg_converge_roles makes roles and databases match the secret files. Setting a
# SCRAM password draws a new salt, and pgbouncer's userlist copies the
# verifier, so it only writes when a fingerprint of the secrets and of what the
# server holds differs from the last run: a repeated 'up' changes nothing.
pg_converge_roles() {
	local host=$1 port=$2 user=$3 password=$4 source=$5 stamp=$PAMTRAIL_HOME/postgres-roles.stamp fingerprint
	if ! fingerprint=$(pg_roles_fingerprint "$host" "$port" "$user" "$password"); then
		# Our own cluster with a lost or regenerated admin secret: reset it
		# through the socket, which needs no password.
		[[ $source == local ]] || die "cannot log in as $user on $host:$port (check PAMTRAIL_PG_ADMIN_USER/PASSWORD)"
		pg_bootstrap_admin "$port"
		fingerprint=$(pg_roles_fingerprint "$host" "$port" "$user" "$password") ||
			die "cannot log in as $user on $host:$port even after resetting its password"
	fi
	if [[ -f $stamp && $(<"$stamp") == "$fingerprint" ]]; then
		return 0
	fi
	log "creating or updating roles and databases"
	pg_provision_roles "$host" "$port" "$user" "$password"
	fingerprint=$(pg_roles_fingerprint "$host" "$port" "$user" "$password") || die "cannot read back roles on $host:$port"
	write_file_if_changed "$stamp" 0600 <<<"$fingerprint" || true
}

# pg_roles_fingerprint hashes the target, the secret files and the server's
# stored roles, passwords and databases; it fails if the admin cannot log in.
pg_roles_fingerprint() {
	local host=$1 port=$2 user=$3 password=$4 state
	state=$(PGPASSWORD=$password PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -q -At -h "$host" -p "$port" -U "$user" -d postgres -c "
		SELECT rolname || ' ' || rolcanlogin || ' ' || coalesce(rolpassword, '') FROM pg_authid
		  WHERE rolname IN ('$PG_DEMO_ROLE', '$PG_MD5_ROLE', '$PG_PLAIN_ROLE', '$PG_TRUST_ROLE')
		UNION ALL
		SELECT datname || ' ' || pg_get_userbyid(datdba) FROM pg_database WHERE datname IN ('$PG_DEMO_DB', '$PG_TEST_DB')
		ORDER BY 1" 2>/dev/null) || return 1
	{
		echo "$host:$port"
		cat "$SECRETS_DIR/$PG_DEMO_ROLE.password" "$SECRETS_DIR/$PG_MD5_ROLE.password" "$SECRETS_DIR/$PG_PLAIN_ROLE.password"
		echo "$state"
	} | sha256sum | cut -d' ' -f1
}

# pg_provision_roles creates missing roles and databases and sets every
# password from its secret file.
pg_provision_roles() {
	local host=$1 port=$2 user=$3 password=$4
	local demo_pw md5_pw plain_pw md5_hash
	demo_pw=$(<"$SECRETS_DIR/$PG_DEMO_ROLE.password")
	md5_pw=$(<"$SECRETS_DIR/$PG_MD5_ROLE.password")
	plain_pw=$(<"$SECRETS_DIR/$PG_PLAIN_ROLE.password")
	# A pre-hashed "md5..." literal is stored as-is whatever password_encryption
	# says, so md5 auth really runs the md5 exchange and not SCRAM.
	md5_hash=md5$(printf '%s%s' "$md5_pw" "$PG_MD5_ROLE" | md5sum | cut -d' ' -f1)
	{
		pg_quiet_sql_prelude
		cat <<-EOF
			SELECT format('CREATE ROLE %I', r) FROM unnest(ARRAY['$PG_DEMO_ROLE', '$PG_MD5_ROLE', '$PG_PLAIN_ROLE', '$PG_TRUST_ROLE']) AS r
			  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec
			ALTER ROLE $PG_DEMO_ROLE WITH LOGIN PASSWORD '$demo_pw';
			ALTER ROLE $PG_MD5_ROLE WITH LOGIN PASSWORD '$md5_hash';
			ALTER ROLE $PG_PLAIN_ROLE WITH LOGIN PASSWORD '$plain_pw';
			ALTER ROLE $PG_TRUST_ROLE WITH LOGIN PASSWORD NULL;
			SELECT 'CREATE DATABASE $PG_DEMO_DB OWNER $PG_DEMO_ROLE' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$PG_DEMO_DB') \gexec
			SELECT 'CREATE DATABASE $PG_TEST_DB OWNER ' || quote_ident(current_user) WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$PG_TEST_DB') \gexec
			GRANT CONNECT ON DATABASE $PG_DEMO_DB TO $PG_MD5_ROLE, $PG_PLAIN_ROLE, $PG_TRUST_ROLE;
		EOF
	} | PGPASSWORD=$password PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
		-h "$host" -p "$port" -U "$user" -d postgres >/dev/null ||
		die "cannot create roles and databases as $user on $host:$port"
}

postgres_down() {
	local LOG_TAG=postgres
	if [[ ! -f $PG_DATA/PG_VERSION ]]; then
		log "not provisioned"
		return 0
	fi
	PG_BIN=$(pg_bindir)
	if ! pg_running; then
		log "not running"
		return 0
	fi
	pg_as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null || die "pg_ctl stop failed; see $PG_LOG"
	log "stopped"
}

postgres_status() {
	if pg_external; then
		echo "postgres     external $PAMTRAIL_PG_HOST:$PAMTRAIL_PG_PORT"
	elif [[ ! -f $PG_DATA/PG_VERSION ]]; then
		echo "postgres     not provisioned"
	else
		PG_BIN=$(pg_bindir)
		if pg_running; then
			# postmaster.pid holds the pid on line 1 and the port on line 4.
			echo "postgres     running  $LOCAL_HOST:$(sed -n 4p "$PG_DATA/postmaster.pid") (pid $(sed -n 1p "$PG_DATA/postmaster.pid"))"
		else
			echo "postgres     stopped"
		fi
	fi
}
