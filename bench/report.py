"""The one JSON shape every bench prints, so CI and readers parse them alike:

    {"bench": name, "size": {...}, "results": {...}, "floor": {...},
     "floor_note": "what the floor is", "ratio": {name: number}, "notes": "..."}

`floor` is measured in the same run, on the same rows, as the results; each `ratio` is
named for what it divides (e.g. `publish_vs_floor` = publish seconds / floor seconds).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any


def p95(samples: list[float]) -> float:
    """The 95th percentile of `samples` as the benches report it (nearest rank below)."""
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


def latency(samples_ms: list[float]) -> dict[str, float]:
    """{"p50_ms", "p95_ms", "max_ms"} of request times in milliseconds."""
    return {
        "p50_ms": round(statistics.median(samples_ms), 1),
        "p95_ms": round(p95(samples_ms), 1),
        "max_ms": round(max(samples_ms), 1),
    }


def emit(
    bench: str,
    *,
    size: dict[str, Any],
    results: dict[str, Any],
    floor: dict[str, Any],
    floor_note: str,
    ratio: dict[str, float],
    notes: str = "",
) -> None:
    report = {
        "bench": bench,
        "size": size,
        "results": results,
        "floor": floor,
        "floor_note": floor_note,
        "ratio": {name: round(value, 3) for name, value in ratio.items()},
        "notes": notes,
    }
    # The report is the last thing on stdout: the CI check parses the final JSON object.
    sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def run_process(argv: list[str], *, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `argv` as a child process to its end and return {"returncode", "stdout",
    "seconds", "peak_rss_mb"}: the child's own peak resident set (the kernel's
    high-water mark, from wait4's rusage), so a bench can say what one worker needs
    apart from the bench process that seeded the data. Its stderr passes through."""
    started = time.perf_counter()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) as child:
        assert child.stdout is not None
        stdout = child.stdout.read()
        _pid, status, usage = os.wait4(child.pid, 0)
        # Popen must not wait for the pid again (it is reaped): record what wait4 saw.
        child.returncode = os.waitstatus_to_exitcode(status)
    return {
        "returncode": child.returncode,
        "stdout": stdout,
        "seconds": time.perf_counter() - started,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


class StatementTimes:
    """Seconds spent per kind of SQL statement on one connection, for a bench's
    profile: `with StatementTimes(connection) as times: ...`, then `times.report()`.
    A statement's kind is its first words up to the first table it names, so the
    batches of a loop add up under one key."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._wrapper: Any = None

    @staticmethod
    def kind(sql: str) -> str:
        words = sql.split()
        for n, word in enumerate(words):
            if word.startswith(('"leadflow_', '"scoring_', "leadflow_", "scoring_", "handoff_")):
                return " ".join(words[: n + 1])[:120]
        return " ".join(words[:4])[:120]

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = self.kind(sql)
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - started
            self.calls[key] = self.calls.get(key, 0) + 1

    def __enter__(self) -> StatementTimes:
        self._wrapper = self.connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._wrapper.__exit__(*exc)

    def report(self, top: int = 12) -> list[dict[str, Any]]:
        """The `top` kinds by total seconds: [{"statement", "calls", "seconds"}]."""
        ranked = sorted(self.seconds.items(), key=lambda item: -item[1])[:top]
        return [
            {"statement": key, "calls": self.calls[key], "seconds": round(seconds, 3)}
            for key, seconds in ranked
        ]
