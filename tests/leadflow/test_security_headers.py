"""The Content-Security-Policy every answer carries (tests/e2e/test_csp_browser.py shows
the pages work under it in chromium): own origin only, nothing inline, no eval."""

import pytest

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def _directives(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


@pytest.mark.parametrize("url", ["/accounts/login/", "/no/such/page/", "/healthz", "/api/v1/"])
@pytest.mark.django_db
def test_every_answer_carries_the_policy(client, url):
    response = client.get(url)

    assert _directives(response["Content-Security-Policy"]) == POLICY


def test_admin_pages_configure_htmx_for_the_policy(admin_client):
    # Admin pages that load htmx (the scoring studio) must keep it from injecting a <style>.
    page = admin_client.get("/admin/").content.decode()

    assert (
        """<meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false}'>"""
        in page
    )
