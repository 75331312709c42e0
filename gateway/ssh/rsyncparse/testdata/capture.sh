#!/bin/bash
# Regenerates the captured rsync traffic used by the tests: each case runs
# the real rsync client with a remote shell that starts the server locally
# and tees both directions. Files: NAME.cmd (the server command line),
# NAME.c2s (client to server bytes), NAME.s2c (server to client bytes).
# The tree's content is deterministic, so the tests can state the expected
# file operations. Run from this directory: ./capture.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/rsh" <<'RSH'
#!/bin/bash
# rsync -e "rsh": $1 is the host, the rest the server command.
shift
printf '%s' "$*" >"$CAPTURE.cmd"
bash -c "$*" < <(tee "$CAPTURE.c2s") > >(tee "$CAPTURE.s2c")
RSH
chmod 700 "$work/rsh"

# bytes N SEED: N deterministic pseudo-random bytes.
bytes() { perl -e 'srand($ARGV[1]); print map { chr(int(rand(256))) } 1 .. $ARGV[0]' "$1" "$2"; }

src=$work/src
mkdir -p "$src/sub dir/deeper"
bytes 5000 01 >"$src/a.txt"
bytes 40000 02 >"$src/big.bin"
: >"$src/empty"
bytes 300 03 >"$src/sub dir/é ü.txt"
bytes 3000 04 >"$src/sub dir/deeper/c.bin"
ln -s a.txt "$src/link"
ln "$src/big.bin" "$src/hard.bin"
touch -d '2024-01-02 03:04:05' "$src"/* "$src/sub dir"/* "$src/sub dir/deeper"/*

# capture NAME ARGS...: one rsync run; the remote side is "x:".
capture() {
	local name=$1
	shift
	CAPTURE=$here/$name rsync -e "$work/rsh" "$@" >/dev/null
	sleep 0.2 # the tee processes flush after rsync returns
}

capture push_r -r "$src/" "x:$work/push_r/"
capture push_a -a "$src/" "x:$work/push_a/"
bytes 100 09 | dd of="$src/big.bin" bs=1 seek=20000 conv=notrunc status=none
capture push_delta -a "$src/" "x:$work/push_a/"
capture push_az -az "$src/" "x:$work/push_az/"
capture push_noinc_delete -aH --no-inc-recursive --delete -c "$src/" "x:$work/push_noinc/"
capture push_dry_run -an "$src/" "x:$work/push_dry/"
capture push_one_file -t "$src/a.txt" "x:$work/one.txt"
capture pull_a -a "x:$src" "$work/pull_a/"
capture pull_zcc -rz --cc=md5 --zc=zlib "x:$src/sub dir/" "$work/pull_zcc/"
capture pull_hardlinks -aH "x:$src/" "$work/pull_h/"
capture push_secluded -r -s "$src/" "x:$work/push_s/"
capture pull_secluded -r -s "x:$src/sub dir/" "$work/pull_s/"
