"""The dashboards' figures, in one place: each kind has its per-day tables (written by the
one recomputation) and its read selectors (what the pages, the API, the CSV export and
the digest call).

- `days`: the KPI per-day sums — the stale-day marks, the per-minute refresh, the nightly
  rebuild — and the drill-down conditions (the handoffs behind a figure).
- `figures`: the KPI selectors read from those sums (the definitions are its docstring).
- `speed_days`: speed to lead pre-summed per MQL day (histograms), recomputed by `days`
  with the KPI sums of the same days.
- `speed_figures`: speed to lead read from those rows (/dashboard/speed/ and its API).
- `claim_figures`: claim or pass on (#19) per rep, read from the claim windows.

Nothing else is here: import the module you need (`from sla.kpis.days import ...`).
"""
