#!/bin/sh
# Stand-in for linuxserver/openssh-server with the variables deploy/compose
# uses: USER_NAME, PUBLIC_KEY_FILE (or PUBLIC_KEY), PUID; host keys under
# /config/ssh_host_keys; sshd on port 2222; key authentication only.
set -eu
user=${USER_NAME:-linuxserver.io}
uid=${PUID:-1000}
home=/home/$user
if ! grep -q "^$user:" /etc/passwd; then
	echo "$user:x:$uid:$uid::$home:/bin/sh" >>/etc/passwd
	echo "$user:x:$uid:" >>/etc/group
fi
mkdir -p "$home/.ssh"
if [ -n "${PUBLIC_KEY_FILE:-}" ]; then
	cat "$PUBLIC_KEY_FILE" >"$home/.ssh/authorized_keys"
else
	printf '%s\n' "${PUBLIC_KEY:?set PUBLIC_KEY_FILE or PUBLIC_KEY}" >"$home/.ssh/authorized_keys"
fi
chown -R "$uid:$uid" "$home"
chmod 0700 "$home/.ssh"
chmod 0600 "$home/.ssh/authorized_keys"
cat >/etc/ssh/sshd_config <<CONFIG
Port 2222
HostKey /config/ssh_host_keys/ssh_host_ed25519_key
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
PidFile none
Subsystem sftp /usr/lib/openssh/sftp-server
CONFIG
exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config
