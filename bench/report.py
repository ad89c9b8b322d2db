"""The one JSON shape every bench prints, so CI and readers parse them alike:

    {"bench": name, "size": {...}, "results": {...}, "floor": {...},
     "floor_note": "what the floor is", "ratio": {name: number}, "notes": "..."}

`floor` is measured in the same run, on the same rows, as the results; each `ratio` is
named for what it divides (e.g. `publish_vs_floor` = publish seconds / floor seconds).
"""

from __future__ import annotations

import json
import statistics
import sys
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
