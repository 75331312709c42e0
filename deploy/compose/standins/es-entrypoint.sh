#!/bin/sh
# Stand-in for the official Elasticsearch image's entrypoint: environment
# variables named like settings (discovery.type, xpack.security.enabled, ...)
# become -E options, ES_JAVA_OPTS is passed on, the node runs as uid 1000 with
# its data under /usr/share/elasticsearch/data and listens on 9200.
set -eu
home=/usr/share/elasticsearch
# The shell drops variables whose names are not identifiers: read them from
# the environment this process started with.
tr '\0' '\n' </proc/$$/environ | grep -E '^[a-z0-9_]+\.[a-z0-9_.]+=' >/tmp/settings || true
set --
while IFS= read -r setting; do
	set -- "$@" -E "$setting"
done </tmp/settings
rm -f /tmp/settings
chown -R 1000:0 "$home/data" "$home/logs" "$home/config"
export ES_JAVA_HOME=/opt/jdk
exec /usr/bin/setpriv --reuid=1000 --regid=0 --clear-groups "$home/bin/elasticsearch" -E network.host=0.0.0.0 "$@"
