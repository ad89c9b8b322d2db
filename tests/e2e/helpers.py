"""Steps the browser tests share."""

from __future__ import annotations

PASSWORD = "pw-for-tests"  # tests.factories.UserFactory's


def log_in(page, base_url: str, username: str, then: str = "/inbox/") -> None:
    page.goto(f"{base_url}/accounts/login/?next={then}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(f"{base_url}{then}")
