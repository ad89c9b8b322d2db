#!/usr/bin/env bash
# Every bench at its smoke size (seconds each) on PostgreSQL + Redis, in a database of
# its own (leadflow_bench_smoke, created fresh and dropped at the end). Fails when a
# bench errors, prints no JSON report, or its report lacks a figure or its floor
# (bench/run_all.py says what is checked): a bench that nothing runs rots.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

if ! command -v wrk >/dev/null || ! command -v pg_isready >/dev/null \
   || ! command -v redis-cli >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends wrk postgresql-client redis-tools >/dev/null
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
fi
pg_isready -h 127.0.0.1 -p 5432
redis-cli -h 127.0.0.1 ping >/dev/null
make install >/dev/null

database=leadflow_bench_smoke
drop() { psql -q -h 127.0.0.1 -U postgres -d postgres \
  -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true; }
trap drop EXIT
# Redis databases of their own (the PostgreSQL tests use 0 and 1); override to share a
# machine, e.g. BENCH_REDIS_DB=10.
redis_db=${BENCH_REDIS_DB:-2}
started=$(date +%s)
DATABASE_URL=postgres://postgres@127.0.0.1:5432/$database \
CELERY_BROKER_URL=redis://127.0.0.1:6379/$redis_db \
REDIS_URL=redis://127.0.0.1:6379/$((redis_db + 1)) \
  .venv/bin/python bench/run_all.py --smoke --database "$database" \
    --port "${BENCH_PORT:-8775}"
echo "bench smoke: ok in $(( $(date +%s) - started )) s"
