#!/usr/bin/env bash
# LeadFlow as users run it, on the CI machine itself (no docker): DEBUG=0 on a fresh
# PostgreSQL database, Redis as broker and cache, migrations, collectstatic into a temp
# dir, `check --deploy` with no warnings, the demo, gunicorn with 2 workers; then
# .ci/prod_check.py logs in as a demo rep and the demo manager and checks the login page,
# the inbox, the dashboard, the admin and the API docs with every stylesheet and script
# they name, and /healthz, /readyz. Settings: PROD_SMOKE_PORT (default: a free port),
# PROD_SMOKE_REDIS (default redis://127.0.0.1:6379/2; /3 for the cache).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
db=leadflow_prod_smoke
pg=postgres://postgres@127.0.0.1:5432
redis=${PROD_SMOKE_REDIS:-redis://127.0.0.1:6379/2}
port=${PROD_SMOKE_PORT:-$($py -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")}
tmp=$(mktemp -d)
started=$SECONDS
step() { printf '  %-30s %3d s\n' "$1" "$((SECONDS - started))"; }

PGOPTIONS="--client-min-messages=warning" psql -q -v ON_ERROR_STOP=1 "$pg/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"

# Production settings as the README gives them (DEBUG off, a long random key, https), as
# behind a proxy that ends TLS and says so with X-Forwarded-Proto.
unset SECURE_SSL_REDIRECT SECURE_HSTS_SECONDS SECURE_HSTS_INCLUDE_SUBDOMAINS SECURE_HSTS_PRELOAD
export DEBUG=0 LEADFLOW_SECURE_COOKIES=1 USE_X_FORWARDED_HEADERS=1
SECRET_KEY=$($py -c "import secrets; print(secrets.token_urlsafe(50))")
export SECRET_KEY DATABASE_URL="$pg/$db" CELERY_BROKER_URL="$redis" REDIS_URL="${redis%/*}/3"
export LEADFLOW_VAR_DIR="$tmp/var" LOG_LEVEL=WARNING

gunicorn_pid=
cleanup() {
  if [ -n "$gunicorn_pid" ]; then
    kill -TERM "$gunicorn_pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$gunicorn_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$gunicorn_pid" 2>/dev/null || true
  fi
  # What load_demo queued for a worker that never runs here: the smoke's own Redis keys.
  redis-cli -u "$redis" DEL celery intake scoring delivery sla unacked unacked_index \
    >/dev/null 2>&1 || true
  PGOPTIONS="--client-min-messages=warning" psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db" || true
  rm -rf "$tmp"
}
trap cleanup EXIT

$py manage.py migrate --no-input -v 0
step "migrated"
$py manage.py collectstatic --no-input -v 0
test -f "$LEADFLOW_VAR_DIR/staticfiles/staticfiles.json" || { echo "no static manifest"; exit 1; }
step "static collected"
# --fail-level WARNING fails on a warning; the grep on anything else printed.
$py manage.py check --deploy --fail-level WARNING >"$tmp/check.log" 2>&1 \
  || { cat "$tmp/check.log"; echo "check --deploy is not clean"; exit 1; }
grep -q "System check identified no issues" "$tmp/check.log" \
  || { cat "$tmp/check.log"; echo "check --deploy printed issues"; exit 1; }
step "check --deploy clean"
# The demo's dead outbox message is logged as a warning on purpose: keep it out of sight.
$py manage.py load_demo >"$tmp/demo.log" 2>&1 || { cat "$tmp/demo.log"; exit 1; }
step "demo loaded"
password=$(sed -n 's/^DEMO_PASSWORD = "\(.*\)"$/\1/p' leadflow/demo/data.py)

.venv/bin/gunicorn leadflow.wsgi --workers 2 --bind "127.0.0.1:$port" \
  --error-logfile "$tmp/gunicorn.log" >"$tmp/gunicorn.out" 2>&1 &
gunicorn_pid=$!
up=
for _ in $(seq 1 120); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && { up=1; break; }
  kill -0 "$gunicorn_pid" 2>/dev/null || break
  sleep 0.5
done
[ -n "$up" ] || { echo "gunicorn did not start"; cat "$tmp/gunicorn.log" "$tmp/gunicorn.out"; exit 1; }
step "gunicorn up"
$py .ci/prod_check.py "http://127.0.0.1:$port" rep1 manager "$password" \
  || { echo "--- gunicorn log"; tail -n 50 "$tmp/gunicorn.log" "$tmp/gunicorn.out"; exit 1; }
if grep -q '"level": "ERROR"' "$tmp/gunicorn.out"; then
  echo "the server logged errors:"; grep '"level": "ERROR"' "$tmp/gunicorn.out"; exit 1
fi
echo "production smoke test: ok ($((SECONDS - started)) s)"
