#!/usr/bin/env bash
# Install the debugger the GDB stub's tests drive (tests/test_gdb.py):
# Debian's gdb-multiarch. Without it the tests use the host's gdb if it can
# debug x86-64, and skip (with the reason) when there is neither.
# Run as root (CI is); a no-op when gdb-multiarch is already there.
set -euo pipefail
if command -v gdb-multiarch >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_gdb.sh: no apt-get; the gdb tests will use gdb or skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends gdb-multiarch >/dev/null
gdb-multiarch --version | head -n 1
