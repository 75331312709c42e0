# shellcheck shell=bash disable=SC2034 # local LOG_TAG is read by log() via dynamic scope
# OpenSSH target: a private sshd on 127.0.0.1 (config and host keys under
# PAMTRAIL_HOME, not /etc/ssh) and the OS user the quickstart account demo-ssh
# logs in as, by key (the gateway's stored credential) or by password.

SSHD_DIR=$PAMTRAIL_HOME/sshd
SSHD_CONFIG=$SSHD_DIR/sshd_config
SSHD_HOST_KEY=$SSHD_DIR/ssh_host_ed25519_key
SSHD_PIDFILE=$SSHD_DIR/sshd.pid
SSHD_LOG=$SSHD_DIR/sshd.log
SSHD_KNOWN_HOSTS=$SSHD_DIR/known_hosts
# Overridable so a second checkout on the same machine can keep its own user:
# the OS user's password is machine-wide, the secret file is per checkout.
SSHD_USER=${PAMTRAIL_SSHD_USER:-pamtrail-demo}
SSHD_CLIENT_KEY=$SECRETS_DIR/demo-ssh_ed25519
SSHD_PASSWORD_FILE=$SECRETS_DIR/demo-ssh.password

sshd_port() { echo "${PAMTRAIL_SSHD_PORT:-2022}"; }

sshd_running() { pid_alive "$SSHD_PIDFILE" "$SSHD_CONFIG"; }

sshd_up() {
	local LOG_TAG=sshd
	# The clients are what tests and benchmarks drive through the gateway.
	ensure_packages openssh-server openssh-client rsync tmux openssl
	[[ $SSHD_USER =~ ^pamtrail-[a-z0-9-]+$ ]] || die "PAMTRAIL_SSHD_USER=$SSHD_USER must look like pamtrail-NAME (sshd only admits pamtrail-* users)"
	local port changed=0
	port=$(sshd_port)
	ensure_dir "$SSHD_DIR" 0700
	# Privilege separation needs this even though the system sshd is not used.
	ensure_dir /run/sshd 0755

	if [[ ! -s $SSHD_HOST_KEY ]]; then
		log "generating host key"
		rm -f "$SSHD_HOST_KEY" "$SSHD_HOST_KEY.pub"
		ssh-keygen -q -t ed25519 -N '' -C "pamtrail-local-sshd" -f "$SSHD_HOST_KEY" || die "ssh-keygen (host key) failed"
	fi
	sshd_ensure_user
	if sshd_render_config "$port" | write_file_if_changed "$SSHD_CONFIG" 0600; then
		changed=1
	fi
	/usr/sbin/sshd -t -f "$SSHD_CONFIG" || die "sshd rejected $SSHD_CONFIG"
	# A known_hosts line lets clients verify the host strictly, as the gateway's
	# host-key pinning does.
	local known_hosts
	known_hosts="[$LOCAL_HOST]:$port $(cut -d' ' -f1-2 "$SSHD_HOST_KEY.pub")"
	write_file_if_changed "$SSHD_KNOWN_HOSTS" 0600 <<<"$known_hosts" || true

	if sshd_running; then
		if ((changed)); then
			log "configuration changed; restarting"
			stop_pidfile "$SSHD_PIDFILE" "$SSHD_CONFIG" sshd
		else
			log "already running"
		fi
	fi
	if ! sshd_running; then
		require_port_free "$port" sshd "set PAMTRAIL_SSHD_PORT to a free port"
		log "starting on $LOCAL_HOST:$port"
		# sshd runs as root: privilege separation and switching to the target
		# user need it. -E keeps its log out of syslog, which may not exist.
		rm -f "$SSHD_PIDFILE"
		if ! detach /usr/sbin/sshd -f "$SSHD_CONFIG" -E "$SSHD_LOG" ||
			! wait_listening 15 sshd "$SSHD_PIDFILE" "$SSHD_CONFIG" "$port"; then
			tail_log "$SSHD_LOG"
			die "sshd did not start; see $SSHD_LOG"
		fi
	fi
	{
		env_line PAMTRAIL_SSHD_HOST "$LOCAL_HOST"
		env_line PAMTRAIL_SSHD_PORT "$port"
		env_line PAMTRAIL_SSHD_USER "$SSHD_USER"
		env_line PAMTRAIL_SSHD_KEY "$SSHD_CLIENT_KEY"
		env_line PAMTRAIL_SSHD_PASSWORD_FILE "$SSHD_PASSWORD_FILE"
		env_line PAMTRAIL_SSHD_KNOWN_HOSTS "$known_hosts"
		env_line PAMTRAIL_SSHD_KNOWN_HOSTS_FILE "$SSHD_KNOWN_HOSTS"
	} | write_env_fragment sshd
	log "ready on $LOCAL_HOST:$port"
}

# sshd_ensure_user creates the target user, its client key pair and password.
# The OS user outlives PAMTRAIL_HOME (another checkout, or CI's clone, may have
# set its password since), so the password is checked on every run and reset
# when it does not match the secret file.
sshd_ensure_user() {
	local home
	if ! id -u "$SSHD_USER" >/dev/null 2>&1; then
		log "creating user $SSHD_USER"
		useradd --create-home --shell /bin/bash --comment "pamtrail demo SSH target" "$SSHD_USER" ||
			die "useradd $SSHD_USER failed"
	fi
	ensure_secret "$SSHD_PASSWORD_FILE"
	if ! sshd_password_matches; then
		log "setting the password of $SSHD_USER from $SSHD_PASSWORD_FILE"
		# SHA-512 crypt, so sshd_password_matches can recompute it with openssl.
		printf '%s:%s\n' "$SSHD_USER" "$(<"$SSHD_PASSWORD_FILE")" | chpasswd -c SHA512 ||
			die "chpasswd for $SSHD_USER failed"
	fi

	if [[ ! -s $SSHD_CLIENT_KEY || ! -s $SSHD_CLIENT_KEY.pub ]]; then
		log "generating client key $SSHD_CLIENT_KEY"
		rm -f "$SSHD_CLIENT_KEY" "$SSHD_CLIENT_KEY.pub"
		ssh-keygen -q -t ed25519 -N '' -C "demo-ssh@pamtrail" -f "$SSHD_CLIENT_KEY" || die "ssh-keygen (client key) failed"
	fi
	home=$(getent passwd "$SSHD_USER" | cut -d: -f6)
	[[ -d $home ]] || die "home directory $home of $SSHD_USER does not exist"
	# StrictModes rejects keys in group- or world-writable places.
	ensure_dir "$home/.ssh" 0700 "$SSHD_USER:$SSHD_USER"
	local authorized=$home/.ssh/authorized_keys pub
	pub=$(<"$SSHD_CLIENT_KEY.pub")
	touch "$authorized"
	grep -qxF -- "$pub" "$authorized" || printf '%s\n' "$pub" >>"$authorized"
	chmod 0600 "$authorized"
	chown "$SSHD_USER:$SSHD_USER" "$authorized"
}

# sshd_password_matches recomputes the user's SHA-512 crypt hash from the
# secret file with the stored salt; any other hash format counts as a mismatch.
sshd_password_matches() {
	local hash salt
	hash=$(getent shadow "$SSHD_USER" | cut -d: -f2)
	[[ $hash =~ ^\$6\$([^$]+)\$ && ${BASH_REMATCH[1]} != rounds=* ]] || return 1
	salt=${BASH_REMATCH[1]}
	[[ $(openssl passwd -6 -salt "$salt" -stdin <"$SSHD_PASSWORD_FILE") == "$hash" ]]
}

sshd_render_config() {
	cat <<-EOF
		# Managed by deploy/local/sshd.sh; rewritten on every 'up'.
		ListenAddress $LOCAL_HOST:$1
		HostKey $SSHD_HOST_KEY
		PidFile $SSHD_PIDFILE
		# PAM would need /etc/pam.d plumbing; plain shadow passwords suffice here.
		UsePAM no
		PubkeyAuthentication yes
		PasswordAuthentication yes
		KbdInteractiveAuthentication no
		PermitRootLogin no
		PermitEmptyPasswords no
		# Only our test users, never the machine's real accounts.
		AllowUsers pamtrail-*
		AuthorizedKeysFile .ssh/authorized_keys
		# internal-sftp avoids depending on where the distro puts sftp-server.
		Subsystem sftp internal-sftp
		X11Forwarding no
		PrintMotd no
		AcceptEnv LANG LC_*
		# Benchmarks open many concurrent connections and channels.
		MaxStartups 200:30:400
		MaxSessions 100
		LogLevel INFO
	EOF
}

sshd_down() {
	local LOG_TAG=sshd
	stop_pidfile "$SSHD_PIDFILE" "$SSHD_CONFIG" sshd
}

sshd_status() {
	if [[ ! -f $SSHD_CONFIG ]]; then
		echo "sshd         not provisioned"
	elif sshd_running; then
		echo "sshd         running  $(sed -n 's/^ListenAddress //p' "$SSHD_CONFIG") (pid $(<"$SSHD_PIDFILE"))"
	else
		echo "sshd         stopped"
	fi
}
