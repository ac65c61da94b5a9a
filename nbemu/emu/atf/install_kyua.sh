#!/bin/sh
# Install the real Kyua (Debian's `kyua` package, bookworm: 0.13+git20190402) so that
# tests/test_atf_kyua.py can check that Kyua and `nbemu atf` agree case by case.
# CI runs this before `make test`; locally the Kyua test is skipped without kyua.
set -eu
if command -v kyua >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends kyua
command -v kyua
