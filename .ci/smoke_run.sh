#!/usr/bin/env bash
# `make run` on a throw-away database: the home page and admin login answer within a
# minute, and a printed demo login logs in; then a second run whose beat is killed stops.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${SMOKE_PORT:-8765}
tmp=$(mktemp -d)
log="$tmp/run.log"
export DATABASE_URL="sqlite:///$tmp/db.sqlite3" LEADFLOW_VAR_DIR="$tmp/var" PORT=$port
# Job control gives the background job its own process group (pgid = its pid), so the
# cleanup reaches make, honcho, the web server and the worker together.
set -m
make run >"$log" 2>&1 &
pid=$!
set +m
cleanup() {
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 -- "-$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL -- "-$pid" 2>/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 1 60); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
  sleep 1
done
curl -fsS -o /dev/null "http://127.0.0.1:$port/admin/login/" || { cat "$log"; exit 1; }
grep -q "rep1" "$log" || { echo "make run did not print the demo logins"; cat "$log"; exit 1; }
password=$(sed -n 's/.*password for all: \([^)]*\)).*/\1/p' "$log" | head -1)
.venv/bin/python .ci/login_check.py "http://127.0.0.1:$port" rep1 "$password"
grep -q "celery@.* ready" "$log" || { echo "the Celery worker did not start"; cat "$log"; exit 1; }
grep -q "beat: Starting" "$log" || { echo "Celery beat did not start"; cat "$log"; exit 1; }
cleanup
trap - EXIT
if kill -0 -- "-$pid" 2>/dev/null; then
  echo "processes of make run outlived the stop signal:"; ps -o pid,args -g "$pid"; exit 1
fi

# A beat killed with SIGKILL must not leave a worker that no periodic task reaches:
# beat is its own honcho process, and honcho stops make run when one of them ends.
set -m
make run >"$log" 2>&1 &
pid=$!
set +m
trap cleanup EXIT
for _ in $(seq 1 60); do
  grep -q "beat: Starting" "$log" && grep -q "celery@.* ready" "$log" && break
  sleep 1
done
# honcho names the pid of the shell it starts each process in, in a process group of its
# own ("beat.1 started (pid=123)"); the celery process is in that group.
started_pid() { sed -n "s/.* $1\.1 started (pid=\([0-9]*\)).*/\1/p" "$log" | head -1; }
beat_group=$(started_pid beat)
worker=$(started_pid worker)
beat=$(ps -e -o pid=,pgid=,args= | awk -v g="$beat_group" '$2 == g && /leadflow beat/ {print $1}')
[ -n "$beat" ] && [ -n "$worker" ] || { echo "no beat or worker in make run"; cat "$log"; exit 1; }
kill -KILL $beat
for _ in $(seq 1 30); do
  kill -0 -- "-$pid" 2>/dev/null || kill -0 "$worker" 2>/dev/null || break
  sleep 1
done
if kill -0 -- "-$pid" 2>/dev/null || kill -0 "$worker" 2>/dev/null; then
  echo "make run went on after beat was killed:"; cat "$log"; exit 1
fi
trap - EXIT
echo "make run smoke test: ok"
