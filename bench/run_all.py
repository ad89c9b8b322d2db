"""Run every bench, check what each printed, and fail if one broke.

    python bench/run_all.py --smoke --database leadflow_bench_smoke   # CI: seconds each
    python bench/run_all.py --database leadflow_bench                 # `make bench`: full

Each bench runs in its own process, in order, against a fresh database (`--database`:
created on the PostgreSQL server of DATABASE_URL, default 127.0.0.1:5432, and dropped
at the end unless --keep-database) and the Redis of CELERY_BROKER_URL / REDIS_URL. A
bench fails the run when it exits non-zero, prints no JSON report, or its report lacks
a figure the bench exists to measure (each must be a finite number) or shows lost
work: the checks below. The reports are saved to var/bench/<name>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent

# name → (script, extra arguments, figures that must be numbers, conditions that must hold)
Check = Callable[[dict[str, Any]], bool]
BENCHES: dict[str, tuple[str, list[str], list[str], dict[str, Check]]] = {
    "scoring": (
        "scoring_bench.py",
        ["--wipe"],
        [
            "results.initial_scoring.seconds",
            "results.publish_rescore.seconds",
            "results.incremental_p95_ms",
            "results.publish_rescore.worker_peak_rss_mb",
            "floor.seconds",
            "ratio.publish_vs_floor",
        ],
        {
            "intake processed every event during the publish rescore": lambda r: (
                0
                < r["results"]["publish_rescore"]["intake_during_rescore"]["events"]
                == r["results"]["publish_rescore"]["intake_during_rescore"]["processed"]
            ),
            "every lead scored": lambda r: (
                r["results"]["publish_rescore"]["leads"] == r["size"]["leads"]
            ),
            "both rescores done": lambda r: (
                r["results"]["initial_scoring"]["status"]
                == r["results"]["publish_rescore"]["status"]
                == "done"
            ),
            "the floor updated every lead": lambda r: (
                r["floor"]["leads_updated"] == r["size"]["leads"]
            ),
        },
    ),
    "preview": (
        "preview_bench.py",
        ["--wipe", "--reseed"],
        [
            "results.preview_job.seconds",
            "results.preview_job.worker_peak_rss_mb",
            "results.reopen.summary_ms",
            "floor.seconds",
            "ratio.job_vs_floor",
        ],
        {
            "the job finished": lambda r: r["results"]["preview_job"]["status"] == "done",
            "every lead scored, as the floor did": lambda r: (
                r["results"]["preview_job"]["leads"]
                == r["floor"]["now"]["rows"]
                == r["size"]["leads"]
            ),
            "every handed lead backtested, as the floor did": lambda r: (
                r["results"]["preview_job"]["handed_leads"] == r["floor"]["handoff"]["rows"] > 0
            ),
        },
    ),
    "speed": (
        "speed_bench.py",
        ["--wipe"],
        [
            "results.hop_figures.p95_ms",
            "results.delay_outcomes.p95_ms",
            "results.forecast.p95_ms",
            "results.page.p95_ms",
            "results.api.p95_ms",
            "floor.count_p95_ms",
            "ratio.page_p95_vs_floor",
        ],
        {
            "every handoff has its timeline": lambda r: (
                r["results"]["timelines"]
                == r["size"]["open_handoffs"] + r["size"]["closed_handoffs"]
            ),
            "the app's refresh made the rows of every marked day": lambda r: (
                r["results"]["days_refreshed"] == r["results"]["days_marked"] > 0
            ),
        },
    ),
    "inbox": (
        "inbox_bench.py",
        ["--wipe"],
        [
            "results.manager_inbox.p95_ms",
            "results.search_kana.p95_ms",
            "results.overdue_list.p95_ms",
            "results.api_search.p95_ms",
            "results.dashboard.p95_ms",
            "floor.page_and_count_p95_ms",
            "floor.dashboard_p95_ms",
            "ratio.worst_search_p95_vs_floor",
            "ratio.dashboard_p95_vs_floor",
        ],
        {},
    ),
    "batch": (
        "batch_bench.py",
        [],
        [],
        {
            "every batch item applied": lambda r: all(
                batch.get("applied") == int(size) for size, batch in r["results"].items()
            ),
        },
    ),
    "sla": (
        "sla_bench.py",
        ["--wipe"],
        [
            "results.sweep_seconds_median",
            "results.dashboard.p95_ms",
            "results.api_summary.p95_ms",
            "floor.sweep_seconds",
            "floor.dashboard_p95_ms",
            "ratio.sweep_vs_floor",
            "ratio.dashboard_p95_vs_floor",
        ],
        {
            "every sweep breached the due timers": lambda r: (
                set(r["results"]["breached_per_sweep"]) == {r["size"]["due_timers"]}
            ),
            "the floor claimed the same timers": lambda r: (
                r["floor"]["sweep_timers_claimed"] == r["size"]["due_timers"]
            ),
        },
    ),
    "delivery": (
        "delivery_bench.py",
        [],
        [
            "results.latency_ms.p50",
            "results.latency_ms.p99",
            "floor.round_trip_ms.p99",
            "ratio.p50_vs_floor",
            "ratio.p99_vs_floor",
        ],
        {
            "every MQL delivered once, signed": lambda r: (
                (
                    r["results"]["missing"],
                    r["results"]["duplicates"],
                    r["results"]["bad_signatures"],
                )
                == (0, 0, 0)
            ),
        },
    ),
    "claims": (
        "claims_bench.py",
        ["--wipe"],
        [
            "results.sweep.median_s",
            "results.sweep.p95_s",
            "results.mql_to_second_rep_s.p99",
            "floor.window_s",
            "floor.bare_update_median_s",
        ],
        {
            "every first window of a never-claiming rep passed to a second rep": lambda r: (
                r["results"]["passed_to_second_rep"]
                == r["results"]["first_windows_of_never_claimers"]
                > 0
            ),
        },
    ),
    "replay": (
        "replay_bench.py",
        ["--wipe"],
        [
            "results.job_seconds",
            "results.mqls_per_s",
            "floor.seconds",
            "ratio.job_vs_floor",
        ],
        {
            "the job finished": lambda r: r["results"]["status"] == "done",
            "every seeded MQL replayed, as the floor read": lambda r: (
                r["results"]["replayed_mqls"] == r["results"]["floor_rows"] == r["size"]["mqls"]
            ),
            "the claim windows passed MQLs on": lambda r: r["results"]["replay_passes"] > 0,
        },
    ),
    "bulk": (
        "bulk_bench.py",
        ["--wipe"],
        [
            "results.seconds",
            "results.mqls_per_second",
            "floor.seconds",
            "ratio.hand_off_vs_floor",
        ],
        {
            "every lead moved to MQL with its handoff and outbox row": lambda r: (
                r["results"]["moved"]
                == r["results"]["handoffs"]
                == r["results"]["transitions"]
                == r["results"]["outbox"]
                == r["size"]["mqls"]
                == r["floor"]["handoffs"]
            ),
            "the wave handed the reps' room and held the rest": lambda r: (
                r["results"]["wave"]["assigned"]
                == r["size"]["reps"] * r["size"]["capacity_per_rep"]
                and r["results"]["wave"]["held"]
                == r["size"]["mqls"] - r["results"]["wave"]["assigned"]
            ),
        },
    ),
    "intake": (
        "intake_bench.py",
        [],
        [
            "results.throughput.requests_per_s",
            "results.fixed_rate.p99_ms",
            "results.batches.events_per_s",
            "floor.bare_view.requests_per_s",
            "ratio.throughput_vs_bare",
        ],
        {
            "every 202 stored": lambda r: r["results"]["lost"] == 0,
            "both servers answered in every round": lambda r: (
                min(
                    r["results"]["throughput"]["rounds_requests_per_s"]
                    + r["floor"]["bare_view"]["rounds_requests_per_s"]
                )
                > 0
            ),
            "no errors from either server": lambda r: (
                r["results"]["throughput"]["non_2xx"]
                + r["results"]["throughput"]["socket_errors"]
                + r["floor"]["bare_view"]["non_2xx"]
                + r["floor"]["bare_view"]["socket_errors"]
                == 0
            ),
        },
    ),
    "calibration": (
        "calibration_bench.py",
        ["--wipe"],
        [
            "results.calibration_seconds",
            "results.feedback_seconds",
            "results.explorer_redraw_ms",
            "floor.seconds",
            "ratio.calibration_vs_floor",
        ],
        {
            "every fifth lead handed over and decided": lambda r: (
                r["size"]["handed_over"] == r["size"]["decided"] == r["size"]["leads"] // 5
            ),
        },
    ),
}


def last_report(stdout: str) -> dict[str, Any] | None:
    """The last JSON object on stdout (a report starts on a line of its own)."""
    decoder = json.JSONDecoder()
    starts = [i for i, line in enumerate(stdout.splitlines(keepends=True)) if line == "{\n"]
    lines = stdout.splitlines(keepends=True)
    for start in reversed(starts):
        try:
            report, _end = decoder.raw_decode("".join(lines[start:]))
        except json.JSONDecodeError:
            continue
        if isinstance(report, dict):
            return report
    return None


def figure(report: dict[str, Any], dotted: str) -> Any:
    value: Any = report
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def problems(name: str, report: dict[str, Any] | None) -> list[str]:
    if report is None:
        return ["printed no JSON report"]
    found = []
    if report.get("bench") != name:
        found.append(f"bench is {report.get('bench')!r}, not {name!r}")
    for key in ("size", "results", "floor", "ratio"):
        if not isinstance(report.get(key), dict) or not report[key]:
            found.append(f"{key} is missing or empty")
    if not isinstance(report.get("floor_note"), str) or not report["floor_note"]:
        found.append("floor_note is missing")
    _script, _args, numbers, conditions = BENCHES[name]
    for dotted in numbers + [f"ratio.{key}" for key in report.get("ratio") or {}]:
        value = figure(report, dotted)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            found.append(f"{dotted} is {value!r}, not a number")
    for key, value in (report.get("ratio") or {}).items():
        if isinstance(value, int | float) and not value > 0:
            found.append(f"ratio.{key} is {value}: one side measured nothing")
    if not found:
        for label, holds in conditions.items():
            try:
                if not holds(report):
                    found.append(f"failed: {label}")
            except (KeyError, TypeError) as error:
                found.append(f"cannot check {label}: {error!r}")
    return found


def database_urls(name: str) -> tuple[str, str]:
    """(the bench database's URL, the maintenance database's URL on the same server)."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit("The benches need PostgreSQL: DATABASE_URL must be postgres://...")
    return (
        urlunsplit(parts._replace(path=f"/{name}")),
        urlunsplit(parts._replace(path="/postgres")),
    )


def recreate(maintenance_url: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg2

    connection = psycopg2.connect(maintenance_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="each bench at its smoke size")
    parser.add_argument("--database", required=True, help="created fresh, dropped at the end")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--only", action="append", choices=list(BENCHES), help="run just these")
    parser.add_argument("--port", type=int, default=8765, help="intake bench ports: this and +1")
    args = parser.parse_args()
    if not args.database.replace("_", "").isalnum():
        raise SystemExit("--database must be letters, digits and underscores.")

    url, maintenance = database_urls(args.database)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        # Production-like: DEBUG records every query (memory and time), whatever the
        # Makefile's development default says.
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-not-a-secret-" + "x" * 40,
        "LEADFLOW_SECURE_COOKIES": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    recreate(maintenance, args.database)
    failed: dict[str, list[str]] = {}
    summary = []
    try:
        for name in args.only or list(BENCHES):
            script, extra, _numbers, _conditions = BENCHES[name]
            command = [sys.executable, str(ROOT / "bench" / script), *extra]
            command += ["--smoke"] if args.smoke else []
            command += ["--port", str(args.port)] if name == "intake" else []
            print(f"--- {name}: {' '.join(command[1:])}", flush=True)
            started = time.monotonic()
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            seconds = time.monotonic() - started
            report = last_report(done.stdout)
            found = problems(name, report)
            if done.returncode:
                found.insert(0, f"exited with {done.returncode}")
            if report is not None:
                (out_dir / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
            if found:
                failed[name] = found
                sys.stdout.write(done.stdout[-4000:])
                sys.stdout.write(done.stderr[-4000:])
            summary.append((name, seconds, (report or {}).get("ratio"), found))
            print(f"    {seconds:.1f} s, ratio {(report or {}).get('ratio')}", flush=True)
    finally:
        if not args.keep_database:
            recreate(maintenance, args.database, drop_only=True)
    print(json.dumps({name: round(seconds, 1) for name, seconds, _r, _f in summary}))
    if failed:
        for name, found in failed.items():
            print(f"FAILED {name}: " + "; ".join(found), file=sys.stderr)
        raise SystemExit(1)
    print(f"All {len(summary)} benches ran; reports in {out_dir.relative_to(ROOT)}/.")


if __name__ == "__main__":
    main()
