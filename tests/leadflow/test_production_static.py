"""The production build: `collectstatic` with the manifest storage, and the pages served
from what it collected with DEBUG off.

The test settings serve static files from the app folders without a manifest, so the
rest of the suite never sees the manifest storage. Here it is the real one: every
`{% static %}` must be in the manifest (or the page is a 500) and every file a vendored
asset names (a source map, a font, an image) must exist (or the build stops).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.factories import UserFactory
from tests.handoff.helpers import make_team

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_STORAGE = "whitenoise.storage.CompressedManifestStaticFilesStorage"
ASSET = re.compile(r'<(?:link[^>]*rel="stylesheet"[^>]*href|script[^>]*src)="(/static/[^"]+)"')


def _production_env(var_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "LEADFLOW_VAR_DIR"}
    }
    env.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": "build-only-" + "x" * 50,
            "DJANGO_SETTINGS_MODULE": "leadflow.settings",
            "LEADFLOW_VAR_DIR": str(var_dir),
        }
    )
    return env


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> Path:
    """`DEBUG=0 manage.py collectstatic`, exactly as the Dockerfile's build step runs it."""
    var_dir = tmp_path_factory.mktemp("var")
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=_production_env(var_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return var_dir / "staticfiles"


def test_collectstatic_builds_every_vendored_asset_with_the_manifest_storage(collected):
    manifest = json.loads((collected / "staticfiles.json").read_text())["paths"]

    for name in [
        "vendor/chartjs/chart.umd.min.js",
        "vendor/htmx/htmx.min.js",
        "js/sla-dashboard.js",
        "css/leadflow.css",
        "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js",
        "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
        "admin/css/base.css",
        "admin/js/nav_sidebar.js",
    ]:
        hashed = manifest[name]
        assert hashed != name, f"{name} has no hashed name"
        assert (collected / hashed).is_file(), hashed
        assert (collected / f"{hashed}.gz").is_file(), f"{hashed} is not compressed"
    # The vendored Chart.js names no source map: the map is not shipped (VERSION says why).
    chart = (collected / manifest["vendor/chartjs/chart.umd.min.js"]).read_text()
    assert "sourceMappingURL" not in chart


@pytest.fixture
def production(settings, collected):
    """DEBUG off, the manifest storage, whitenoise serving what collectstatic collected."""
    settings.DEBUG = False
    settings.STATIC_ROOT = collected
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": MANIFEST_STORAGE}}
    settings.WHITENOISE_AUTOREFRESH = False
    settings.WHITENOISE_USE_FINDERS = False
    return settings


def _served_right(assets: list[str]) -> bool:
    """Each stylesheet came as 200 text/css, each script as 200 text/javascript."""
    kinds = {".css": "200 text/css", ".js": "200 text/javascript"}
    return bool(assets) and all(
        line.endswith(kinds[Path(line.split(" ")[0]).suffix]) for line in assets
    )


def _assets_answer(client: Client, body: str) -> list[str]:
    """Every stylesheet and script of the page, with the status and type it came with."""
    found = []
    for url in ASSET.findall(body):
        response = client.get(url)
        kind = response.headers.get("Content-Type", "").split(";")[0]
        found.append(f"{url.rsplit('/', 1)[-1]} {response.status_code} {kind}")
    return found


@pytest.mark.django_db
def test_pages_answer_with_their_static_files_under_production_settings(production):
    client = Client(raise_request_exception=False)

    login = client.get("/accounts/login/")
    assert login.status_code == 200
    assets = _assets_answer(client, login.content.decode())
    assert len(assets) == 2  # the stylesheet and the header menu's script
    assert re.fullmatch(r"leadflow\.[0-9a-f]{12}\.css 200 text/css", assets[0])
    assert re.fullmatch(r"menu\.[0-9a-f]{12}\.js 200 text/javascript", assets[1])

    admin_login = client.get("/admin/login/")
    assert admin_login.status_code == 200
    assert _served_right(_assets_answer(client, admin_login.content.decode()))

    missing = client.get("/no/such/page/")
    assert missing.status_code == 404
    assert _assets_answer(client, missing.content.decode())[0].endswith(" 200 text/css")


@pytest.mark.django_db
def test_signed_in_pages_answer_with_their_static_files_under_production_settings(production):
    _team, (rep,), manager = make_team("Kanto", reps=1)
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    client = Client(raise_request_exception=False)

    client.force_login(rep)
    inbox = client.get("/inbox/")
    assert inbox.status_code == 200
    inbox_assets = _assets_answer(client, inbox.content.decode())
    assert [re.sub(r"\.[0-9a-f]{12}\.", ".", line) for line in inbox_assets] == [
        "leadflow.css 200 text/css",
        "menu.js 200 text/javascript",
        "handoff.css 200 text/css",
        "htmx.min.js 200 text/javascript",
    ]

    client.force_login(manager)
    dashboard = client.get("/dashboard/")
    assert dashboard.status_code == 200
    assets = _assets_answer(client, dashboard.content.decode())
    scripts = [line for line in assets if ".js " in line]
    assert [re.sub(r"\.[0-9a-f]{12}\.", ".", line) for line in scripts] == [
        "menu.js 200 text/javascript",
        "chart.umd.min.js 200 text/javascript",
        "sla-dashboard.js 200 text/javascript",
    ]

    client.force_login(admin)
    for url in ["/admin/", "/api/docs/"]:
        page = client.get(url)
        assert page.status_code == 200, url
        assets = _assets_answer(client, page.content.decode())
        assert _served_right(assets), (url, assets)
