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
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The system Dovecot service is not ours; tests run a private instance.
if command -v systemctl >/dev/null 2>&1; then systemctl stop dovecot 2>/dev/null || true; fi

pg_url=${SERVICEDESK_TEST_PG:-postgresql://postgres@127.0.0.1:5432/test}
if command -v pg_isready >/dev/null 2>&1; then
    if ! pg_isready -q -d "$pg_url"; then
        echo "PostgreSQL is not answering at $pg_url; trying to start the local cluster"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
        pg_isready -d "$pg_url"
    fi
fi
