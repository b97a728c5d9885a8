#!/bin/sh
# redis-server and redis-cli for the differential and redis-cli tests (tests/e2e/test_vs_redis.py,
# tests/e2e/test_redis_cli.py): installs Debian's redis-server and redis-tools (7.0 on bookworm)
# with apt-get when either binary is missing. Quick and silent when both are there. Never fails
# `make test`: without them those tests skip and say why.
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && exit 0
echo "redis-server or redis-cli not found: installing redis-server and redis-tools with apt-get ..."
sh "$(dirname "$0")/apt_install.sh" "the tests that compare with Redis" redis-server redis-tools
# Where systemd runs, the package starts a service on 6379, the port `make run` uses; the tests
# start their own redis-server, so the service just installed is stopped and disabled.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
    $SUDO systemctl disable --now redis-server >/dev/null 2>&1 \
        && echo "stopped and disabled the redis-server service the package started (port 6379)"
fi
exit 0
