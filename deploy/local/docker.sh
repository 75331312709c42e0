# shellcheck shell=bash disable=SC2034 # local LOG_TAG is read by log() via dynamic scope
# Docker engine: Debian's docker.io and docker-compose, for building the
# pamtrail images and running deploy/compose/. Machine-wide, like the engine
# itself: one dockerd on the default socket with its data under
# /var/lib/docker, whichever checkout started it. Published ports bind to
# 127.0.0.1 unless a compose file or `docker run -p` names another address.
# Without systemd as PID 1 the daemon is started here; where it already
# answers (systemd, another checkout) it is left alone.

DOCKER_DIR=$PAMTRAIL_HOME/docker
DOCKER_LOG=$DOCKER_DIR/dockerd.log
DOCKER_SOCKET=/var/run/docker.sock
DOCKER_PIDFILE=/var/run/docker.pid
# Debian's client, not a newer one elsewhere on PATH: it speaks the engine's
# API version without negotiation surprises.
DOCKER_BIN=/usr/bin/docker

docker_answers() { "$DOCKER_BIN" -H "unix://$DOCKER_SOCKET" info >/dev/null 2>&1; }

docker_up() {
	local LOG_TAG=docker
	ensure_packages docker.io docker-compose
	ensure_dir "$DOCKER_DIR" 0700
	if docker_answers; then
		log "engine already running ($("$DOCKER_BIN" version -f '{{.Server.Version}}' 2>/dev/null))"
		docker_write_env
		return 0
	fi
	if ! pid_alive "$DOCKER_PIDFILE" dockerd; then
		rm -f "$DOCKER_PIDFILE"
		log "starting dockerd (log: $DOCKER_LOG)"
		# setsid -f forks the daemon into its own session and returns at once:
		# it outlives this script, and no shell of ours waits on it holding
		# the services.sh lock (a backgrounded "detach ... &" would).
		detach setsid -f /usr/sbin/dockerd --host "unix://$DOCKER_SOCKET" --pidfile "$DOCKER_PIDFILE" \
			--ip "$LOCAL_HOST" >>"$DOCKER_LOG" 2>&1 </dev/null
	fi
	if ! wait_until 90 "dockerd to answer on $DOCKER_SOCKET" docker_answers; then
		tail_log "$DOCKER_LOG"
		die "dockerd did not start"
	fi
	log "engine $("$DOCKER_BIN" version -f '{{.Server.Version}}') running, storage driver $("$DOCKER_BIN" info -f '{{.Driver}}')"
	docker_write_env
}

docker_write_env() {
	{
		env_line PAMTRAIL_DOCKER "$DOCKER_BIN"
		env_line DOCKER_HOST "unix://$DOCKER_SOCKET"
	} | write_env_fragment docker
}

docker_down() {
	local LOG_TAG=docker
	# Only a daemon this script started (its pidfile, our log) is stopped;
	# containers are stopped by their own compose project, not here.
	if [[ -f $DOCKER_LOG ]] && pid_alive "$DOCKER_PIDFILE" dockerd; then
		stop_pidfile "$DOCKER_PIDFILE" dockerd dockerd 60
	else
		log "not started by this checkout; left alone"
	fi
}

docker_status() {
	if docker_answers; then
		echo "docker: running ($("$DOCKER_BIN" version -f '{{.Server.Version}}' 2>/dev/null)) on $DOCKER_SOCKET"
	else
		echo "docker: not running"
	fi
}
