"""What every page's header needs to know from the SLA app: whether to link the dashboard.

The header is in base.html, rendered on every page; only sla knows who may open the
dashboard (sla.access), so it answers here. Lazy: a page that never renders the header
(a JSON error, a redirect) pays nothing, and the roles are read once per request.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def navigation(request: HttpRequest) -> dict[str, Any]:
    def may_see_dashboard() -> bool:
        from sla.access import dashboard_access

        return dashboard_access(user=getattr(request, "user", None)).allowed

    return {"nav_dashboard": may_see_dashboard}
