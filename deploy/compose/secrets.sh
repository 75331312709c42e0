#!/usr/bin/env bash
# Creates the secret files of the compose stack, once (existing files are
# kept): the spool and collector-queue keyrings (pamtrail keygen, run from the
# pamtrail image), the demo PostgreSQL password, the gateway's key pair for
# the demo SSH target, that target's host key and its pinned known_hosts
# line, and alice's SSH key pair (the demo user; her private key is for you).
# Files the containers read as the image user (65532) are owned by it, 0600.
# Usage: secrets.sh [DIR]   (default: deploy/compose/secrets, gitignored;
# docker-compose reads PAMTRAIL_COMPOSE_SECRETS for another one)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${1:-${PAMTRAIL_COMPOSE_SECRETS:-$HERE/secrets}}
VERSION=${PAMTRAIL_VERSION:-0.1.0}
DOCKER=${PAMTRAIL_DOCKER:-/usr/bin/docker}
IMAGE_UID=65532

log() { printf '[compose-secrets] %s\n' "$*" >&2; }

mkdir -p "$DIR" "$DIR/demo-sshd-host-keys"
chmod 0711 "$DIR"
chmod 0700 "$DIR/demo-sshd-host-keys"
DIR=$(cd "$DIR" && pwd)
umask 077

keyring() {
	[[ -s $DIR/$1 ]] && return 0
	log "creating $1"
	"$DOCKER" run --rm --user 0 --network none -v "$DIR:/out" "pamtrail:$VERSION" keygen --out "/out/$1" >/dev/null
	chown "$IMAGE_UID:$IMAGE_UID" "$DIR/$1"
}

keypair() {
	[[ -s $DIR/$1 ]] && return 0
	log "creating $1"
	rm -f "$DIR/$1" "$DIR/$1.pub"
	ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$DIR/$1"
}

keyring spool-keys
keyring collector-queue-keys
if [[ ! -s $DIR/pg-demo-password ]]; then
	log "creating pg-demo-password"
	openssl rand -hex 24 | tr -d '\n' >"$DIR/pg-demo-password"
fi
keypair demo-ssh-key pamtrail-compose-gateway
keypair demo-sshd-host-keys/ssh_host_ed25519_key pamtrail-compose-demo-sshd
keypair alice pamtrail-compose-alice
# The gateway pins the target's host key: a changed key is refused.
printf '[sshd]:2222 %s\n' "$(cut -d' ' -f1-2 "$DIR/demo-sshd-host-keys/ssh_host_ed25519_key.pub")" >"$DIR/demo-ssh-known-hosts"
cp "$DIR/alice.pub" "$DIR/alice-authorized-keys"
chown "$IMAGE_UID:$IMAGE_UID" "$DIR/pg-demo-password" "$DIR/demo-ssh-key" "$DIR/demo-ssh-known-hosts" "$DIR/alice-authorized-keys"
# sshd reads the public key as root; the host key stays root's, 0600.
chmod 0644 "$DIR/demo-ssh-key.pub"
log "secrets in $DIR; alice's SSH key: $DIR/alice"
