#!/usr/bin/env bash
# `make fuzz`: run every Go fuzz target in the repository for FUZZTIME each
# (default 15s). The seed corpora already run as ordinary tests in make test;
# this explores beyond them. New crashers land in testdata/fuzz/ of their
# package: commit them with the fix.
set -euo pipefail
cd "$(dirname "$0")/../.."
fuzztime=${FUZZTIME:-15s}
failed=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "== $pkg $target ($fuzztime)"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"; then
      failed=1
    fi
  done
done
exit $failed
