#!/usr/bin/env bash
# The largest documented batch (5,000 events, signed) through a running intake
# (gunicorn, DEBUG off) and a running Celery worker on PostgreSQL + Redis: the event is
# processed with every item applied and every lead created (issue #14, finding 2).
# Needs the PostgreSQL and Redis that .ci/run starts; BIG_BATCH_DB, BIG_BATCH_REDIS and
# BIG_BATCH_PORT choose where (defaults below).
set -euo pipefail
cd "$(dirname "$0")/.."
db=${BIG_BATCH_DB:-leadflow_ci_big_batch}
port=${BIG_BATCH_PORT:-8766}
redis=${BIG_BATCH_REDIS:-redis://127.0.0.1:6379/2}
tmp=$(mktemp -d)
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" CELERY_BROKER_URL="$redis"
# Plain http to gunicorn on this machine: no https redirect, no secure-only cookies.
export DEBUG=0 LEADFLOW_SECURE_COOKIES=0 SECRET_KEY="ci-big-batch-not-secret" LOG_LEVEL=WARNING LEADFLOW_VAR_DIR="$tmp/var"
unset REDIS_URL

make install >/dev/null
export PGOPTIONS="-c client_min_messages=warning"
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
.venv/bin/python manage.py migrate -v 0
secret=$(.venv/bin/python -c "import secrets; print(secrets.token_hex(16))")
.venv/bin/python manage.py add_source generic big-batch --secret "$secret" >/dev/null
# Leftover tasks of an earlier run in this Redis db would reach the worker first.
.venv/bin/celery -A leadflow purge -f >/dev/null

set -m  # each background job its own process group, so cleanup ends their children
.venv/bin/gunicorn leadflow.wsgi --bind "127.0.0.1:$port" --workers 2 >"$tmp/web.log" 2>&1 &
web=$!
.venv/bin/celery -A leadflow worker --pool=prefork --concurrency=2 --without-gossip \
  --without-mingle --loglevel=WARNING >"$tmp/worker.log" 2>&1 &
worker=$!
set +m
cleanup() {
  kill -TERM -- "-$web" "-$worker" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 -- "-$web" 2>/dev/null || kill -0 -- "-$worker" 2>/dev/null || break
    sleep 0.5
  done
  kill -KILL -- "-$web" "-$worker" 2>/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 1 60); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break
  sleep 1
done
if ! .venv/bin/python .ci/big_batch.py "http://127.0.0.1:$port" big-batch "$secret" \
    --events "${BIG_BATCH_EVENTS:-5000}" --timeout "${BIG_BATCH_TIMEOUT:-600}"; then
  tail -50 "$tmp/worker.log" "$tmp/web.log"
  exit 1
fi
cleanup
trap - EXIT
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db"
