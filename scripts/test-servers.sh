#!/usr/bin/env bash
# Installs the real servers the tests start privately (Dovecot, Chromium) and
# checks that PostgreSQL answers. The tests start their own instances on
# loopback ports; nothing here touches the system's services or their config.
set -euo pipefail

need=()
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Keep package scripts from starting system services (a system Dovecot
    # would listen on every interface); the tests start private instances.
    added_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        added_policy=yes
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    if [ -n "$added_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# A system Dovecot, if one runs anyway, is not ours: stop it.
if [ -f /run/dovecot/master.pid ]; then
    kill "$(cat /run/dovecot/master.pid)" 2>/dev/null || true
fi

pg_url=${SERVICEDESK_TEST_PG:-postgresql://postgres@127.0.0.1:5432/test}
if command -v pg_isready >/dev/null 2>&1; then
    if ! pg_isready -q -d "$pg_url"; then
        echo "PostgreSQL is not answering at $pg_url; trying to start the local cluster"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
        pg_isready -d "$pg_url"
    fi
fi
