# shellcheck shell=bash disable=SC2034 # local LOG_TAG is read by log() via dynamic scope
# Elasticsearch from the integ-test-zip distribution on Maven Central (there is
# no Debian package), run as the unprivileged pamtrail-es user because it
# refuses to run as root. PAMTRAIL_ES_URL set means: use that server instead.

ES_ROOT=$PAMTRAIL_HOME/elasticsearch
ES_DOWNLOADS=$PAMTRAIL_HOME/downloads
ES_USER=pamtrail-es
ES_CLUSTER=pamtrail-local
# Newest versions verified to download from Maven Central and start here; see
# README.md for the ones tried. 8.x is the fallback when no JDK 21+ exists.
ES_DEFAULT_VERSION_9=9.2.0
ES_DEFAULT_VERSION_8=8.19.21
# The process marker tells our node from a recycled pid.
ES_MARKER=org.elasticsearch

es_port() { echo "${PAMTRAIL_ES_PORT:-9200}"; }

es_external() { [[ -n ${PAMTRAIL_ES_URL:-} && ${PAMTRAIL_ES_SOURCE:-} != local ]]; }

# es_node_dir holds one version's config, data and logs: data written by one
# major version cannot be opened by an older one, so versions never share it.
es_node_dir() { echo "$ES_ROOT/node-$1"; }

# es_find_jdk prints the JDK home with the highest major version >= $1, judged
# from each JDK's `release` file so no JVM has to start.
es_find_jdk() {
	local min=$1 best="" best_major=0 release major
	for release in /usr/lib/jvm/*/release; do
		[[ -f $release ]] || continue
		major=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$release")
		[[ $major =~ ^[0-9]+$ ]] || continue
		[[ -x $(dirname "$release")/bin/java ]] || continue
		if ((major >= min && major > best_major)); then
			best=$(dirname "$release") best_major=$major
		fi
	done
	[[ -n $best ]] && echo "$best"
}

# es_select sets ES_VERSION and ES_JAVA: Elasticsearch 9 needs Java 21+, 8
# runs on the Java 17 Debian ships.
es_select() {
	local want=${PAMTRAIL_ES_VERSION:-}
	local jdk21
	jdk21=$(es_find_jdk 21 || true)
	if [[ -z $want ]]; then
		if [[ -n $jdk21 ]]; then want=$ES_DEFAULT_VERSION_9; else want=$ES_DEFAULT_VERSION_8; fi
	fi
	[[ $want =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "PAMTRAIL_ES_VERSION=$want is not a version like 9.2.0"
	ES_VERSION=$want
	if [[ ${want%%.*} -ge 9 ]]; then
		[[ -n $jdk21 ]] || die "Elasticsearch $want needs a JDK 21 or newer under /usr/lib/jvm; none found (unset PAMTRAIL_ES_VERSION to fall back to $ES_DEFAULT_VERSION_8 on Java 17)"
		ES_JAVA=$jdk21
	else
		ES_JAVA=$(es_find_jdk 17 || true)
		if [[ -z $ES_JAVA ]]; then
			ensure_packages openjdk-17-jre-headless
			ES_JAVA=$(es_find_jdk 17) || die "no JDK 17+ under /usr/lib/jvm even after installing openjdk-17-jre-headless"
		fi
	fi
}

es_pidfile_version() {
	local node
	node=$(dirname "$1")
	echo "${node##*/node-}"
}

es_running() { pid_alive "$(es_node_dir "$1")/elasticsearch.pid" "$ES_MARKER"; }

# es_http_up probes the cluster health API: GET / is no use, the integ-test-zip
# answers it with 405 because it lacks the rest-root module.
es_http_up() { curl -fsS --max-time 5 "$1/_cluster/health" >/dev/null 2>&1; }

elasticsearch_up() {
	local LOG_TAG=elasticsearch
	ensure_packages curl
	if es_external; then
		log "using the existing server at $PAMTRAIL_ES_URL (PAMTRAIL_ES_URL set)"
		es_http_up "$PAMTRAIL_ES_URL" || die "PAMTRAIL_ES_URL=$PAMTRAIL_ES_URL does not answer GET /_cluster/health"
		{
			env_line PAMTRAIL_ES_SOURCE external
			env_line PAMTRAIL_ES_URL "$PAMTRAIL_ES_URL"
		} | write_env_fragment elasticsearch
		return 0
	fi

	es_select
	local port url node
	port=$(es_port)
	url=http://$LOCAL_HOST:$port
	node=$(es_node_dir "$ES_VERSION")
	# The fast path: a node of this version already answering is left alone.
	if es_running "$ES_VERSION" && es_http_up "$url"; then
		log "already running $ES_VERSION on $url"
		es_write_env "$url"
		return 0
	fi
	es_stop_other_versions
	es_restart_if_wedged "$ES_VERSION" "$url"

	es_install "$ES_VERSION"
	ensure_system_user "$ES_USER"
	ensure_dir "$ES_ROOT" 0711
	ensure_dir "$node" 0700 "$ES_USER:$ES_USER"
	require_traversable "$ES_USER" "$node"
	local sub
	for sub in config data logs tmp; do
		ensure_dir "$node/$sub" 0700 "$ES_USER:$ES_USER"
	done
	es_write_config "$ES_VERSION" "$port"

	if ! es_running "$ES_VERSION"; then
		require_port_free "$port" Elasticsearch "set PAMTRAIL_ES_PORT to a free port, or point PAMTRAIL_ES_URL at that server"
		log "starting $ES_VERSION on $url with $ES_JAVA (takes 20-60s)"
		# -d returns once the node has started or failed; the launcher's own
		# output (e.g. a JVM that refuses the options) lands in startup.log.
		if ! (cd "$node" && detach runuser -u "$ES_USER" -- env -u ES_JAVA_OPTS \
			ES_JAVA_HOME="$ES_JAVA" ES_PATH_CONF="$node/config" ES_TMPDIR="$node/tmp" \
			"$ES_ROOT/$ES_VERSION/bin/elasticsearch" -d -p "$node/elasticsearch.pid") >"$node/startup.log" 2>&1; then
			es_explain_failure "$node"
			die "Elasticsearch did not start"
		fi
	fi
	local timeout=${PAMTRAIL_ES_START_TIMEOUT:-180}
	if ! wait_until "$timeout" "Elasticsearch cluster health yellow on $url" \
		curl -fsS --max-time 10 "$url/_cluster/health?wait_for_status=yellow&timeout=5s"; then
		es_explain_failure "$node"
		die "Elasticsearch did not become healthy within ${timeout}s (PAMTRAIL_ES_START_TIMEOUT)"
	fi
	es_write_env "$url"
	# The integ-test-zip lacks the rest-root module, so GET / answers 405;
	# the node list carries the version instead.
	log "ready: version $(curl -fsS --max-time 5 "$url/_cat/nodes?h=version" 2>/dev/null || echo unknown) on $url"
}

# es_restart_if_wedged stops a node that has been up for a while but does not
# answer, e.g. after losing access to its data path ("broken node lock" when
# PAMTRAIL_HOME was made untraversable): it never recovers on its own. A node
# still booting is given the rest of the start timeout instead.
es_restart_if_wedged() {
	local version=$1 url=$2 pidfile age timeout=${PAMTRAIL_ES_START_TIMEOUT:-180}
	pidfile=$(es_node_dir "$version")/elasticsearch.pid
	es_running "$version" || return 0
	# /proc/<pid> is created when the process starts: its age is the node's.
	age=$(($(date +%s) - $(stat -c %Y "/proc/$(<"$pidfile")")))
	if ((age < timeout)) && wait_until $((timeout - age)) "the starting node to answer on $url" es_http_up "$url"; then
		return 0
	fi
	log "node (pid $(<"$pidfile")) is running but not answering on $url; restarting it"
	tail_log "$(es_node_dir "$version")/logs/$ES_CLUSTER.log" 5
	stop_pidfile "$pidfile" "$ES_MARKER" "Elasticsearch $version" 60
}

es_write_env() {
	{
		env_line PAMTRAIL_ES_SOURCE local
		env_line PAMTRAIL_ES_URL "$1"
		env_line PAMTRAIL_ES_VERSION "$ES_VERSION"
	} | write_env_fragment elasticsearch
}

es_explain_failure() {
	tail_log "$1/startup.log"
	tail_log "$1/logs/$ES_CLUSTER.log"
}

# es_stop_other_versions stops a node of another version (PAMTRAIL_ES_VERSION
# changed) so the new one can take the port.
es_stop_other_versions() {
	local pidfile
	for pidfile in "$ES_ROOT"/node-*/elasticsearch.pid; do
		[[ -f $pidfile && $pidfile != "$(es_node_dir "$ES_VERSION")/elasticsearch.pid" ]] || continue
		stop_pidfile "$pidfile" "$ES_MARKER" "Elasticsearch $(es_pidfile_version "$pidfile")" 60
	done
}

# es_install downloads the zip once (cached in PAMTRAIL_HOME/downloads and in
# ~/.m2) and unpacks it into ES_ROOT/<version>, atomically by rename.
es_install() {
	local version=$1 zip=$ES_DOWNLOADS/elasticsearch-$1.zip home=$ES_ROOT/$1
	[[ -x $home/bin/elasticsearch ]] && return 0
	if [[ ! -s $zip ]]; then
		ensure_packages maven
		ensure_dir "$ES_DOWNLOADS" 0700
		local staging=$ES_DOWNLOADS/.mvn-$version
		rm -rf "$staging"
		log "downloading org.elasticsearch.distribution.integ-test-zip:elasticsearch:$version:zip from Maven Central"
		mvn -B -q dependency:copy \
			-Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$version:zip" \
			-DoutputDirectory="$staging" >"$ES_DOWNLOADS/mvn-$version.log" 2>&1 ||
			{ tail_log "$ES_DOWNLOADS/mvn-$version.log" 10; die "cannot download Elasticsearch $version with Maven"; }
		mv -f "$staging/elasticsearch-$version.zip" "$zip" || die "Maven did not produce elasticsearch-$version.zip"
		rm -rf "$staging"
	fi
	ensure_packages unzip
	ensure_dir "$ES_ROOT" 0711
	local extract=$ES_ROOT/.extract-$version
	rm -rf "$extract"
	log "unpacking $zip"
	# The distribution is read-only to the node's user, so it is root-owned and
	# world-readable; everything the node writes lives in its node directory.
	(umask 022 && unzip -q "$zip" -d "$extract") || { rm -rf "$extract"; die "cannot unpack $zip (corrupt download? delete it and retry)"; }
	[[ -x $extract/elasticsearch-$version/bin/elasticsearch ]] || die "$zip has no elasticsearch-$version/bin/elasticsearch"
	chmod -R a+rX "$extract"
	mv "$extract/elasticsearch-$version" "$home"
	rm -rf "$extract"
}

# es_write_config writes the node's config directory: the distribution's
# defaults plus our settings. A change restarts a running node.
es_write_config() {
	local version=$1 port=$2 node changed=0 file
	node=$(es_node_dir "$version")
	# Copy the distribution's files (log4j2.properties, jvm.options, ...) once;
	# the keystore Elasticsearch creates there on first start is kept.
	for file in "$ES_ROOT/$version/config"/*; do
		[[ -e $node/config/$(basename "$file") ]] && continue
		cp -R "$file" "$node/config/"
		chown -R "$ES_USER:$ES_USER" "$node/config/$(basename "$file")"
	done
	if es_render_yml "$version" "$port" "$node" |
		write_file_if_changed "$node/config/elasticsearch.yml" 0600 "$ES_USER:$ES_USER"; then
		changed=1
	fi
	ensure_dir "$node/config/jvm.options.d" 0700 "$ES_USER:$ES_USER"
	if printf '%s\n' "-Xms${PAMTRAIL_ES_HEAP:-1g}" "-Xmx${PAMTRAIL_ES_HEAP:-1g}" |
		write_file_if_changed "$node/config/jvm.options.d/heap.options" 0600 "$ES_USER:$ES_USER"; then
		changed=1
	fi
	if ((changed)) && es_running "$version"; then
		log "configuration changed; restarting"
		stop_pidfile "$node/elasticsearch.pid" "$ES_MARKER" Elasticsearch 60
	fi
}

es_render_yml() {
	local version=$1 port=$2 node=$3
	cat <<-EOF
		# Managed by deploy/local/elasticsearch.sh; rewritten on every 'up'.
		cluster.name: $ES_CLUSTER
		node.name: $ES_CLUSTER-1
		network.host: $LOCAL_HOST
		http.port: $port
		discovery.type: single-node
		path.data: $node/data
		path.logs: $node/logs
		# Developer machines and CI runners often have nearly full disks; the
		# default watermarks would turn indices read-only mid-test.
		cluster.routing.allocation.disk.threshold_enabled: false
		# Tests delete indices by wildcard when cleaning up.
		action.destructive_requires_name: false
	EOF
	# The integ-test-zip ships the security module, which would otherwise demand
	# TLS and passwords; this node is loopback-only test infrastructure.
	if [[ -d $ES_ROOT/$version/modules/x-pack-security ]]; then
		echo "xpack.security.enabled: false"
	fi
}

elasticsearch_down() {
	local LOG_TAG=elasticsearch pidfile found=0
	for pidfile in "$ES_ROOT"/node-*/elasticsearch.pid; do
		[[ -f $pidfile ]] || continue
		found=1
		stop_pidfile "$pidfile" "$ES_MARKER" "Elasticsearch $(es_pidfile_version "$pidfile")" 60
	done
	((found)) || log "not running"
}

elasticsearch_status() {
	local pidfile node version
	if es_external; then
		echo "elasticsearch external $PAMTRAIL_ES_URL"
		return 0
	fi
	for pidfile in "$ES_ROOT"/node-*/elasticsearch.pid; do
		node=$(dirname "$pidfile")
		version=$(es_pidfile_version "$pidfile")
		if es_running "$version"; then
			echo "elasticsearch running  $LOCAL_HOST:$(sed -n 's/^http.port: //p' "$node/config/elasticsearch.yml") (version $version, pid $(<"$pidfile"))"
			return 0
		fi
	done
	if compgen -G "$ES_ROOT/node-*" >/dev/null; then
		echo "elasticsearch stopped"
	else
		echo "elasticsearch not provisioned"
	fi
}

# --- es-cluster: a 3-node cluster from the same distribution ---------------
# For the scale-out tests: three nodes on loopback (HTTP 9211-9213, transport
# 9311-9313 by default; PAMTRAIL_ES_CLUSTER_PORT moves the HTTP base and the
# transport base follows at +100), data under PAMTRAIL_HOME/es-cluster. It is
# separate from the single node above, which every other test keeps using.

ES_CLUSTER_ROOT=$PAMTRAIL_HOME/es-cluster
ES_CLUSTER_NAME=pamtrail-scale
ES_CLUSTER_NODES=3

es_cluster_http_port() { echo $((${PAMTRAIL_ES_CLUSTER_PORT:-9211} + $1 - 1)); }
es_cluster_transport_port() { echo $((${PAMTRAIL_ES_CLUSTER_PORT:-9211} + 100 + $1 - 1)); }
es_cluster_node_dir() { echo "$ES_CLUSTER_ROOT/node-$1"; }
es_cluster_running() { pid_alive "$(es_cluster_node_dir "$1")/elasticsearch.pid" "$ES_MARKER"; }

es_cluster_urls() {
	local n urls=()
	for ((n = 1; n <= ES_CLUSTER_NODES; n++)); do
		urls+=("http://$LOCAL_HOST:$(es_cluster_http_port "$n")")
	done
	local IFS=,
	echo "${urls[*]}"
}

es_cluster_render_yml() {
	local n=$1 node=$2 seeds=() names=() i
	for ((i = 1; i <= ES_CLUSTER_NODES; i++)); do
		seeds+=("\"$LOCAL_HOST:$(es_cluster_transport_port "$i")\"")
		names+=("\"$ES_CLUSTER_NAME-$i\"")
	done
	local IFS=,
	cat <<-EOF
		# Managed by deploy/local/elasticsearch.sh (es-cluster); rewritten on every 'up'.
		cluster.name: $ES_CLUSTER_NAME
		node.name: $ES_CLUSTER_NAME-$n
		network.host: $LOCAL_HOST
		http.port: $(es_cluster_http_port "$n")
		transport.port: $(es_cluster_transport_port "$n")
		discovery.seed_hosts: [${seeds[*]}]
		cluster.initial_master_nodes: [${names[*]}]
		path.data: $node/data
		path.logs: $node/logs
		cluster.routing.allocation.disk.threshold_enabled: false
		action.destructive_requires_name: false
	EOF
	if [[ -d $ES_ROOT/$ES_VERSION/modules/x-pack-security ]]; then
		echo "xpack.security.enabled: false"
	fi
}

# es_cluster_start_node converges node n: config written, process running.
# It is what the scale-out tests call (through `up es-cluster`) to bring back
# a node they killed.
es_cluster_start_node() {
	local n=$1 node changed=0 sub file
	node=$(es_cluster_node_dir "$n")
	ensure_dir "$node" 0700 "$ES_USER:$ES_USER"
	require_traversable "$ES_USER" "$node"
	for sub in config data logs tmp; do
		ensure_dir "$node/$sub" 0700 "$ES_USER:$ES_USER"
	done
	for file in "$ES_ROOT/$ES_VERSION/config"/*; do
		[[ -e $node/config/$(basename "$file") ]] && continue
		cp -R "$file" "$node/config/"
		chown -R "$ES_USER:$ES_USER" "$node/config/$(basename "$file")"
	done
	if es_cluster_render_yml "$n" "$node" |
		write_file_if_changed "$node/config/elasticsearch.yml" 0600 "$ES_USER:$ES_USER"; then
		changed=1
	fi
	ensure_dir "$node/config/jvm.options.d" 0700 "$ES_USER:$ES_USER"
	if printf '%s\n' "-Xms${PAMTRAIL_ES_CLUSTER_HEAP:-512m}" "-Xmx${PAMTRAIL_ES_CLUSTER_HEAP:-512m}" |
		write_file_if_changed "$node/config/jvm.options.d/heap.options" 0600 "$ES_USER:$ES_USER"; then
		changed=1
	fi
	if ((changed)) && es_cluster_running "$n"; then
		log "node $n: configuration changed; restarting"
		stop_pidfile "$node/elasticsearch.pid" "$ES_MARKER" "Elasticsearch cluster node $n" 60
	fi
	es_cluster_running "$n" && return 0
	require_port_free "$(es_cluster_http_port "$n")" "Elasticsearch cluster node $n" "set PAMTRAIL_ES_CLUSTER_PORT to a free base port"
	require_port_free "$(es_cluster_transport_port "$n")" "Elasticsearch cluster node $n" "set PAMTRAIL_ES_CLUSTER_PORT to a free base port"
	log "starting node $n of $ES_VERSION on http $(es_cluster_http_port "$n"), transport $(es_cluster_transport_port "$n")"
	if ! (cd "$node" && detach runuser -u "$ES_USER" -- env -u ES_JAVA_OPTS \
		ES_JAVA_HOME="$ES_JAVA" ES_PATH_CONF="$node/config" ES_TMPDIR="$node/tmp" \
		"$ES_ROOT/$ES_VERSION/bin/elasticsearch" -d -p "$node/elasticsearch.pid") >"$node/startup.log" 2>&1; then
		es_explain_failure "$node"
		die "Elasticsearch cluster node $n did not start"
	fi
}

es_cluster_up() {
	local LOG_TAG=es-cluster n url
	ensure_packages curl
	es_select
	es_install "$ES_VERSION"
	ensure_system_user "$ES_USER"
	ensure_dir "$ES_ROOT" 0711
	ensure_dir "$ES_CLUSTER_ROOT" 0711
	for ((n = 1; n <= ES_CLUSTER_NODES; n++)); do
		es_cluster_start_node "$n"
	done
	url=http://$LOCAL_HOST:$(es_cluster_http_port 1)
	local timeout=${PAMTRAIL_ES_START_TIMEOUT:-180}
	# Green once all three nodes joined and every replica is assigned.
	if ! wait_until "$timeout" "cluster $ES_CLUSTER_NAME with $ES_CLUSTER_NODES nodes, green" \
		curl -fsS --max-time 10 "$url/_cluster/health?wait_for_nodes=$ES_CLUSTER_NODES&wait_for_status=green&timeout=5s"; then
		for ((n = 1; n <= ES_CLUSTER_NODES; n++)); do es_explain_failure "$(es_cluster_node_dir "$n")"; done
		die "the Elasticsearch cluster did not become green within ${timeout}s (PAMTRAIL_ES_START_TIMEOUT)"
	fi
	{
		env_line PAMTRAIL_ES_CLUSTER_URLS "$(es_cluster_urls)"
		env_line PAMTRAIL_ES_CLUSTER_ROOT "$ES_CLUSTER_ROOT"
	} | write_env_fragment es-cluster
	log "ready: $(curl -fsS --max-time 5 "$url/_cat/nodes?h=name" 2>/dev/null | sort | tr '\n' ' ')on $(es_cluster_urls)"
}

es_cluster_down() {
	local LOG_TAG=es-cluster n found=0 pidfile
	for ((n = 1; n <= ES_CLUSTER_NODES; n++)); do
		pidfile=$(es_cluster_node_dir "$n")/elasticsearch.pid
		[[ -f $pidfile ]] || continue
		found=1
		stop_pidfile "$pidfile" "$ES_MARKER" "Elasticsearch cluster node $n" 60
	done
	((found)) || log "not running"
}

es_cluster_status() {
	local n running=()
	for ((n = 1; n <= ES_CLUSTER_NODES; n++)); do
		es_cluster_running "$n" && running+=("$n")
	done
	if ((${#running[@]} > 0)); then
		echo "es-cluster    running  nodes ${running[*]} of $ES_CLUSTER_NODES on $(es_cluster_urls)"
	elif [[ -d $ES_CLUSTER_ROOT ]]; then
		echo "es-cluster    stopped"
	else
		echo "es-cluster    not provisioned"
	fi
}
