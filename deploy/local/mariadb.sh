# shellcheck shell=bash disable=SC2034 # local LOG_TAG is read by log() via dynamic scope
# MariaDB: a private server (not Debian's default one) on 127.0.0.1 with its
# data under $PAMTRAIL_HOME/mariadb, TLS from tls.sh, and the accounts tests
# and the quickstart use: a demo user with mysql_native_password, an ed25519
# user, and the demo and test databases. sysbench comes with it for
# `make bench`.

MY_DIR=$PAMTRAIL_HOME/mariadb
MY_DATA=$MY_DIR/data
MY_RUN=$MY_DIR/run
MY_SOCKET=$MY_RUN/mysqld.sock
MY_PIDFILE=$MY_RUN/mysqld.pid
MY_LOG=$MY_DIR/mariadb.log
MY_CONF=$MY_DIR/my.cnf
MY_ADMIN_USER=pamtrail_admin
MY_DEMO_USER=pamtrail_demo
MY_ED25519_USER=pamtrail_ed25519
MY_DEMO_DB=demo
MY_TEST_DB=pamtrail_test

my_port() { echo "${PAMTRAIL_MYSQL_PORT:-3306}"; }

my_running() { pid_alive "$MY_PIDFILE" mariadbd; }

mariadb_up() {
	local LOG_TAG=mariadb port
	ensure_packages mariadb-server mariadb-client sysbench openssl
	port=$(my_port)
	ensure_secret "$SECRETS_DIR/$MY_ADMIN_USER.mysql.password"
	ensure_secret "$SECRETS_DIR/$MY_DEMO_USER.mysql.password"
	ensure_secret "$SECRETS_DIR/$MY_ED25519_USER.mysql.password"
	ensure_dir "$MY_DIR" 0700 mysql:mysql
	ensure_dir "$MY_RUN" 0700 mysql:mysql
	require_traversable mysql "$MY_DIR"
	# The socket path must fit in sun_path (107 bytes).
	((${#MY_SOCKET} < 108)) || die "socket path $MY_SOCKET is too long; use a shorter PAMTRAIL_HOME"

	local name src changed=0
	for name in server.crt:$TLS_SERVER_CERT server.key:$TLS_SERVER_KEY ca.crt:$TLS_CA_CERT; do
		src=${name#*:}
		write_file_if_changed "$MY_DIR/${name%%:*}" 0600 mysql:mysql <"$src" && changed=1
	done
	my_render_conf "$port" | write_file_if_changed "$MY_CONF" 0600 mysql:mysql && changed=1
	[[ -d $MY_DATA/mysql ]] || my_install_db

	if my_running && ((changed)); then
		log "configuration changed; restarting"
		stop_pidfile "$MY_PIDFILE" mariadbd MariaDB 60
	fi
	if my_running; then
		log "already running"
	else
		require_port_free "$port" MariaDB "set PAMTRAIL_MYSQL_PORT to a free port, or stop that server"
		log "starting on $LOCAL_HOST:$port"
		# A pidfile left by a server that died with the machine names a dead
		# pid; wait_listening would take it for this start failing.
		rm -f "$MY_PIDFILE"
		# mariadbd does not daemonize itself: the exec'd subshell leaves no
		# bash behind that would keep services.sh's lock descriptor open.
		(exec 9>&- runuser -u mysql -- setsid /usr/sbin/mariadbd --defaults-file="$MY_CONF" >>"$MY_LOG" 2>&1 </dev/null) &
		wait_listening 60 MariaDB "$MY_PIDFILE" mariadbd "$port" || {
			tail_log "$MY_LOG"
			die "MariaDB did not start; see $MY_LOG"
		}
	fi
	my_provision
	{
		env_line PAMTRAIL_MYSQL_HOST "$LOCAL_HOST"
		env_line PAMTRAIL_MYSQL_PORT "$port"
		env_line PAMTRAIL_MYSQL_SOCKET "$MY_SOCKET"
		env_line PAMTRAIL_MYSQL_ADMIN_USER "$MY_ADMIN_USER"
		env_line PAMTRAIL_MYSQL_ADMIN_PASSWORD "$(<"$SECRETS_DIR/$MY_ADMIN_USER.mysql.password")"
		env_line PAMTRAIL_MYSQL_DEMO_USER "$MY_DEMO_USER"
		env_line PAMTRAIL_MYSQL_DEMO_PASSWORD_FILE "$SECRETS_DIR/$MY_DEMO_USER.mysql.password"
		env_line PAMTRAIL_MYSQL_ED25519_USER "$MY_ED25519_USER"
		env_line PAMTRAIL_MYSQL_ED25519_PASSWORD_FILE "$SECRETS_DIR/$MY_ED25519_USER.mysql.password"
		env_line PAMTRAIL_MYSQL_DEMO_DB "$MY_DEMO_DB"
		env_line PAMTRAIL_MYSQL_TEST_DB "$MY_TEST_DB"
	} | write_env_fragment mariadb
	log "ready on $LOCAL_HOST:$port"
}

mariadb_down() {
	local LOG_TAG=mariadb
	stop_pidfile "$MY_PIDFILE" mariadbd MariaDB 60
}

mariadb_status() {
	if my_running; then
		echo "mariadb: running on $LOCAL_HOST:$(my_port) (pid $(<"$MY_PIDFILE"))"
	elif [[ -d $MY_DATA/mysql ]]; then
		echo "mariadb: provisioned, stopped"
	else
		echo "mariadb: not provisioned"
	fi
}

# my_install_db creates the system tables in a scratch directory and renames
# it into place, so an interrupted install never leaves a half-made datadir.
my_install_db() {
	local scratch=$MY_DIR/data.install
	log "mariadb-install-db $MY_DATA"
	rm -rf "$scratch"
	mariadb-install-db --no-defaults --user=mysql --datadir="$scratch" --auth-root-authentication-method=socket \
		--skip-test-db >"$MY_DIR/install.log" 2>&1 || {
		tail_log "$MY_DIR/install.log"
		die "mariadb-install-db failed"
	}
	mv "$scratch" "$MY_DATA"
}

my_render_conf() {
	cat <<-EOF
		# Managed by deploy/local/mariadb.sh; rewritten on every 'up'.
		[mariadbd]
		datadir = $MY_DATA
		socket = $MY_SOCKET
		pid-file = $MY_PIDFILE
		bind-address = $LOCAL_HOST
		port = $1
		skip-name-resolve
		max_connections = 300
		max_allowed_packet = 64M
		innodb_buffer_pool_size = 256M
		innodb_flush_log_at_trx_commit = 2
		local_infile = 1
		plugin_load_add = auth_ed25519
		ssl_cert = $MY_DIR/server.crt
		ssl_key = $MY_DIR/server.key
		ssl_ca = $MY_DIR/ca.crt
		log_error = $MY_LOG
	EOF
}

# my_sql runs SQL as root through the socket (unix_socket auth: no password).
my_sql() {
	mariadb --no-defaults --protocol=socket -S "$MY_SOCKET" -u root -N -B "$@"
}

# my_provision makes users and databases match the secret files; every
# statement is idempotent, so a repeated 'up' changes nothing visible.
my_provision() {
	local admin_pw demo_pw ed_pw
	admin_pw=$(<"$SECRETS_DIR/$MY_ADMIN_USER.mysql.password")
	demo_pw=$(<"$SECRETS_DIR/$MY_DEMO_USER.mysql.password")
	ed_pw=$(<"$SECRETS_DIR/$MY_ED25519_USER.mysql.password")
	my_sql <<-EOF || die "cannot provision MariaDB users and databases"
		SET SESSION sql_log_off = 1;
		CREATE DATABASE IF NOT EXISTS $MY_DEMO_DB CHARACTER SET utf8mb4;
		CREATE DATABASE IF NOT EXISTS $MY_TEST_DB CHARACTER SET utf8mb4;
		CREATE USER IF NOT EXISTS '$MY_ADMIN_USER'@'127.0.0.1';
		ALTER USER '$MY_ADMIN_USER'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('$admin_pw');
		GRANT ALL PRIVILEGES ON *.* TO '$MY_ADMIN_USER'@'127.0.0.1' WITH GRANT OPTION;
		CREATE USER IF NOT EXISTS '$MY_DEMO_USER'@'127.0.0.1';
		ALTER USER '$MY_DEMO_USER'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('$demo_pw');
		GRANT ALL PRIVILEGES ON $MY_DEMO_DB.* TO '$MY_DEMO_USER'@'127.0.0.1';
		GRANT ALL PRIVILEGES ON $MY_TEST_DB.* TO '$MY_DEMO_USER'@'127.0.0.1';
		GRANT ALL PRIVILEGES ON \`sbtest\`.* TO '$MY_DEMO_USER'@'127.0.0.1';
		GRANT PROCESS, FILE ON *.* TO '$MY_DEMO_USER'@'127.0.0.1';
		CREATE USER IF NOT EXISTS '$MY_ED25519_USER'@'127.0.0.1';
		ALTER USER '$MY_ED25519_USER'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('$ed_pw');
		GRANT ALL PRIVILEGES ON $MY_TEST_DB.* TO '$MY_ED25519_USER'@'127.0.0.1';
		CREATE DATABASE IF NOT EXISTS sbtest;
	EOF
}
