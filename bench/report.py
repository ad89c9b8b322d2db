"""The one JSON shape every bench prints, so CI and readers parse them alike:

    {"bench": name, "size": {...}, "results": {...}, "floor": {...},
     "floor_note": "what the floor is", "ratio": {name: number}, "notes": "..."}

`floor` is measured in the same run, on the same rows, as the results; each `ratio` is
named for what it divides (e.g. `publish_vs_floor` = publish seconds / floor seconds).
"""

from __future__ import annotations

import json
import sys
from typing import Any


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
