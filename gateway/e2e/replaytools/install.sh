#!/usr/bin/env bash
# Installs what the terminal replay test drives and checks with: tmux (the
# reviewer's terminal, headless), vim and procps (top) on the SSH target,
# from Debian; and the asciinema command-line tool from PyPI, into a venv at
# ${PAMTRAIL_HOME:-<repo>/.pamtrail}/tools/asciinema. Idempotent: a stamp
# file names what is installed, so a second run only checks it. Prints the
# venv's asciinema path.
set -euo pipefail

ASCIINEMA_VERSION=2.4.0

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
home=${PAMTRAIL_HOME:-$repo/.pamtrail}
venv=$home/tools/asciinema
stamp=$venv/.installed

missing=()
for pkg in tmux vim procps python3-venv; do
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) == installed ]] || missing+=("$pkg")
done
# python3-venv is only needed where python3 has no venv module of its own.
if python3 -c 'import venv, ensurepip' 2>/dev/null; then
	missing=("${missing[@]/python3-venv/}")
fi
read -r -a missing <<<"${missing[*]}"
if ((${#missing[@]} > 0)); then
	[[ $(id -u) -eq 0 ]] || { echo "install.sh: missing ${missing[*]}; run as root to install them" >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -f $stamp || $(<"$stamp") != "$ASCIINEMA_VERSION" ]]; then
	rm -rf "$venv"
	mkdir -p "$(dirname "$venv")"
	python3 -m venv "$venv"
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "asciinema==$ASCIINEMA_VERSION"
	echo "$ASCIINEMA_VERSION" >"$stamp"
fi
echo "$venv/bin/asciinema"
