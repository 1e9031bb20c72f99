#!/usr/bin/env bash
# Run Dovecot's imaptest (../shared/imaptest, built by its build.sh) against a fresh
# CleverMail on a loopback port: users testuser1..5@example.test with password
# "secret", data in a temporary directory, server stopped afterwards.
#
#   scripts/imaptest_clevermail.sh compliance
#   scripts/imaptest_clevermail.sh bench 30 10
#   IMAPTEST_EXTRA=logout=0 scripts/imaptest_clevermail.sh bench 30 10
#   IMAPTEST_WORKERS=2 scripts/imaptest_clevermail.sh bench 30 10    # [server] workers
#
# SHARED=path/to/shared overrides where run.sh is looked for (default ../shared beside
# the repository).  The server's log is kept in $WORK/server.log; WORK is printed.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${SHARED:-$REPO/../shared}
[ -x "$SHARED/imaptest/run.sh" ] || [ -f "$SHARED/imaptest/run.sh" ] || { echo "no $SHARED/imaptest/run.sh" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/cm-imaptest.XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$WORK/clevermail.ini" <<INI
[server]
workers = ${IMAPTEST_WORKERS:-1}
hostname = mail.example.test
data_dir = $WORK/data
users_file = $WORK/users.ini
domains = example.test,
[smtp]
listen = ,
submission_listen = ,
[pop3]
listen = ,
[imap]
listen = 127.0.0.1:$PORT,
[limits]
auth_failure_delay = 0
auth_failures_per_client = 1000000
connections_per_client = 1000
INI
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
for i in 1 2 3 4 5; do
  echo secret | python3 -m clevermail --config "$WORK/clevermail.ini" user add "testuser$i@example.test" --password-stdin >/dev/null
done
# setsid: a session (so a scheduler autogroup) of its own, as Dovecot's processes have;
# in imaptest's session it would share one CPU share with the load generator
setsid python3 -m clevermail --config "$WORK/clevermail.ini" start > "$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).close()" 2>/dev/null && break
  sleep 0.1
done
# with [server] workers: every worker up before the clock starts
for _ in $(seq 300); do
  [ "$(grep -c 'clevermail worker [0-9]* running' "$WORK/server.log" || true)" -ge "$(( ${IMAPTEST_WORKERS:-1} - 1 ))" ] && break
  sleep 0.1
done
echo "CleverMail on 127.0.0.1:$PORT, work dir $WORK" >&2
IMAPTEST_OUTDIR=${IMAPTEST_OUTDIR:-$WORK/out} bash "$SHARED/imaptest/run.sh" 127.0.0.1 "$PORT" 'testuser%d@example.test' secret "$@"
