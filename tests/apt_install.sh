#!/bin/sh
# Installs Debian packages for tests that need them: sh tests/apt_install.sh WHAT PKG...
# (WHAT names the tests that skip without them, for the messages). Used by ensure_redis.sh and
# ensure_chromium.sh once they found a binary missing. Never fails `make test`: when apt-get,
# root or sudo is missing, or the install fails, it says so and those tests skip saying why.
what="$1"
shift
if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-get is not available: install $* by hand; $what will skip" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
else
    echo "not root and no sudo: install $* by hand; $what will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null 2>&1 || echo "apt-get update failed; trying with the lists there are" >&2
if ! $SUDO apt-get install -y -q --no-install-recommends "$@" >/dev/null; then
    echo "apt-get install $* failed; $what will skip" >&2
fi
exit 0
