#!/usr/bin/env bash
# `make run` on a throw-away database, as a newcomer's first run: it writes .env, the home
# page and admin login answer within a minute, a printed demo login logs in, and the
# README's add_source, import_leads and drf_create_token lines, run as written in another
# process, work and print URLs with make run's port; the worker processes the webhook
# posted to that URL, beat runs, and the terminal shows no INFO chatter;
# then a second run whose beat is killed stops.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${SMOKE_PORT:-8765}
tmp=$(mktemp -d)
log="$tmp/run.log"
export DATABASE_URL="sqlite:///$tmp/db.sqlite3" LEADFLOW_VAR_DIR="$tmp/var" PORT=$port
# The first run writes .env: set a developer's own aside and give it back afterwards.
saved_env=""
if [ -e .env ]; then saved_env="$tmp/dotenv.saved"; mv .env "$saved_env"; fi
# Job control gives the background job its own process group (pgid = its pid), so the
# cleanup reaches make, honcho, the web server and the worker together.
set -m
make run >"$log" 2>&1 &
pid=$!
set +m
stop() {
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 -- "-$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL -- "-$pid" 2>/dev/null || true
}
cleanup() {
  stop
  rm -f .env
  if [ -n "$saved_env" ]; then mv "$saved_env" .env; fi
}
trap cleanup EXIT
fail() { echo "smoke: $*"; echo "--- make run's output:"; cat "$log"; exit 1; }

for _ in $(seq 1 60); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
  sleep 1
done
curl -fsS -o /dev/null "http://127.0.0.1:$port/admin/login/" || fail "the web server does not answer"
grep -q "rep1" "$log" || fail "make run did not print the demo logins"
password=$(sed -n 's/.*password for all: \([^)]*\)).*/\1/p' "$log" | head -1)
.venv/bin/python .ci/login_check.py "http://127.0.0.1:$port" rep1 "$password"
grep -qx "PUBLIC_BASE_URL=http://127.0.0.1:$port" .env || fail ".env has no PUBLIC_BASE_URL for port $port"

# Another terminal has none of what make or this script set for make run, except the
# throw-away database and var/ (a developer who moves them sets them in both terminals).
other_terminal() {
  env -u DEBUG -u SECRET_KEY -u PUBLIC_BASE_URL -u PORT -u CI -u LEADFLOW_ENV_FILE \
    -u LOG_LEVEL bash -c "$1"
}
# The command exactly as the README writes it (its first `…` code span for that command).
readme_line() {
  grep -o "\.venv/bin/python manage\.py $1 [^\`]*" README.md | head -1
}
for name in add_source import_leads drf_create_token; do
  line=$(readme_line "$name")
  [ -n "$line" ] || fail "the README shows no '.venv/bin/python manage.py $name' line"
  echo "\$ $line"
  out=$(other_terminal "$line" 2>&1) || { echo "$out"; fail "'$line' failed"; }
  echo "$out"
  urls=$(grep -oE 'https?://[^ ]+' <<<"$out" || true)
  wrong=$(grep -v "^http://127.0.0.1:$port/" <<<"$urls" | grep . || true)
  [ -z "$wrong" ] || fail "'$line' printed URLs without port $port: $wrong"
  if [ "$name" = add_source ]; then
    intake_url=$(sed -n 's/^URL: //p' <<<"$out")
    [[ "$intake_url" == "http://127.0.0.1:$port/"* ]] || fail "add_source printed no intake URL"
    secret=$(sed -n 's/.*--secret "\([^"]*\)".*/\1/p' <<<"$line")
  fi
done

# The worker runs: a webhook signed with the README's secret, posted to the printed URL,
# is processed. Beat runs: it keeps its schedule file under var/.
.venv/bin/python - "$intake_url" "$secret" <<'EOF'
import base64, hashlib, hmac, json, sys, urllib.request

url, secret = sys.argv[1:3]
# What Mautic's "Send Test Payload" posts for a new contact (tests/fixtures/vendor-samples).
asset = "tests/fixtures/vendor-samples/mautic/core_test_payloads/lead_post_save_new.json"
with open(asset, "rb") as file:
    body = json.dumps({"mautic.lead_post_save_new": json.load(file)}).encode()
signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
request = urllib.request.Request(  # noqa: S310 - the local server
    url, data=body, headers={"Content-Type": "application/json", "Webhook-Signature": signature}
)
with urllib.request.urlopen(request) as response:  # noqa: S310
    assert response.status == 202, response.status
print("webhook accepted: 202")
EOF
status=""
for _ in $(seq 1 60); do
  status=$(other_terminal ".venv/bin/python manage.py shell --verbosity=0 -c \
    'from integrations.models import InboundEvent as E; print(E.objects.filter(source__slug=\"mautic-prod\").values_list(\"status\", flat=True).first())'")
  [ "$status" = processed ] && break
  sleep 1
done
[ "$status" = processed ] || fail "the worker did not process the webhook (status: $status)"
echo "the worker processed the webhook"
ls "$LEADFLOW_VAR_DIR"/celerybeat-schedule* >/dev/null 2>&1 || fail "Celery beat did not start"
# At WARNING: only runserver's request lines are INFO (no beat line per sweep).
if grep " INFO " "$log" | grep -v " django.server "; then fail "make run logs INFO lines"; fi

stop
trap - EXIT
cleanup
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
# honcho names the pid of the shell it starts each process in, in a process group of its
# own ("beat.1 started (pid=123)"); the celery process is in that group. (Celery's own
# "ready" lines are INFO, which make run no longer shows.)
started_pid() { sed -n "s/.* $1\.1 started (pid=\([0-9]*\)).*/\1/p" "$log" | head -1; }
beat=""
for _ in $(seq 1 60); do
  beat_group=$(started_pid beat)
  worker=$(started_pid worker)
  if [ -n "$beat_group" ]; then
    beat=$(ps -e -o pid=,pgid=,args= | awk -v g="$beat_group" '$2 == g && /leadflow beat/ {print $1}')
  fi
  [ -n "$beat" ] && [ -n "$worker" ] && break
  sleep 1
done
[ -n "$beat" ] && [ -n "$worker" ] || { echo "no beat or worker in make run"; cat "$log"; exit 1; }
sleep 3  # let beat get going: the point is a beat that dies while running
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
