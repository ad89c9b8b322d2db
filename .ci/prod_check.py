"""Production smoke, the client side: LeadFlow under gunicorn with DEBUG=0, as behind a
proxy that ends TLS (every request says X-Forwarded-Proto: https, USE_X_FORWARDED_HEADERS
is on). Logs in through the real form as a rep and as a manager and checks each page and
every stylesheet and script it names. Exits non-zero naming what failed.

usage: prod_check.py http://127.0.0.1:<port> <rep> <manager> <password>
"""

from __future__ import annotations

import http.client
import re
import sys
import urllib.parse
from http.cookies import SimpleCookie

ASSET = re.compile(r'<(?:link[^>]*rel="stylesheet"[^>]*href|script[^>]*src)="([^"]+)"')
TYPES = {".css": "text/css", ".js": ("text/javascript", "application/javascript")}
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


class Browser:
    """One user's session over plain http, as the proxy would forward it.

    Cookies are kept by hand: they are Secure (LEADFLOW_SECURE_COOKIES=1), and a client
    cookie jar would never send them back over the http hop behind the proxy.
    """

    def __init__(self, base: str, *, https: bool = True) -> None:
        parts = urllib.parse.urlsplit(base)
        self.host, self.port = parts.hostname or "", parts.port or 80
        self.https = https
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None, **headers: str):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = {"Host": f"{self.host}:{self.port}", **headers}
        if self.https:
            sent["X-Forwarded-Proto"] = "https"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        content = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie(header)
            for name, morsel in cookie.items():
                self.cookies[name] = morsel.value
        connection.close()
        return response, content

    def get(self, path: str):
        return self.request("GET", path)

    def log_in(self, username: str, password: str) -> None:
        response, page = self.get("/accounts/login/")
        check(response.status == 200, f"GET /accounts/login/ 200 (got {response.status})")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        body = urllib.parse.urlencode(
            {
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": token.group(1).decode() if token else "",
                "next": "/",
            }
        )
        origin = f"https://{self.host}:{self.port}"
        response, _ = self.request(
            "POST", "/accounts/login/", body, Referer=f"{origin}/accounts/login/"
        )
        check(
            response.status == 302 and "sessionid" in self.cookies,
            f"log in as {username} (got {response.status} {response.getheader('Location')})",
        )

    def page(self, path: str, who: str) -> None:
        response, content = self.get(path)
        body = content.decode(errors="replace")
        check(response.status == 200, f"GET {path} as {who}: 200 (got {response.status})")
        policy = response.getheader("Content-Security-Policy") or ""
        check("script-src 'self'" in policy, f"GET {path}: Content-Security-Policy")
        hsts = response.getheader("Strict-Transport-Security") or ""
        check("includeSubDomains; preload" in hsts, f"GET {path}: HSTS ({hsts})")
        assets = ASSET.findall(body)
        check(bool(assets), f"GET {path} names its stylesheets and scripts")
        for url in assets:
            self.asset(urllib.parse.urljoin(path, url.replace("&amp;", "&")))

    def asset(self, url: str) -> None:
        response, _ = self.get(url)
        kind = (response.getheader("Content-Type") or "").split(";")[0]
        path = urllib.parse.urlsplit(url).path
        suffix = ".css" if path.endswith(".css") else ".js"
        if "?script" in url:  # the Swagger UI's init script, served by its view
            suffix = ".js"
        wanted = TYPES[suffix]
        check(
            response.status == 200 and kind in wanted,
            f"  {url}: 200 {wanted} (got {response.status} {kind})",
        )


def main() -> None:
    base, rep, manager, password = sys.argv[1:5]
    if not base.startswith("http://127.0.0.1:"):
        sys.exit("only the local server is checked")

    # Probes speak plain http to the process; everything else is sent on to https.
    plain = Browser(base, https=False)
    for path in ("/healthz", "/readyz"):
        response, content = plain.get(path)
        check(response.status == 200, f"GET {path} over http: 200 (got {response.status})")
        check(b'"status": "ok"' in content, f"GET {path}: {content[:80]!r}")
    response, _ = plain.get("/accounts/login/")
    location = response.getheader("Location") or ""
    check(
        response.status == 301 and location.startswith("https://"),
        f"http is redirected to https (got {response.status} {location})",
    )

    anonymous = Browser(base)
    anonymous.page("/accounts/login/", "anonymous")
    response, _ = anonymous.get("/api/schema/")
    check(response.status == 401, f"GET /api/schema/ anonymous: 401 (got {response.status})")

    as_rep = Browser(base)
    as_rep.log_in(rep, password)
    as_rep.page("/inbox/", rep)

    as_manager = Browser(base)
    as_manager.log_in(manager, password)
    for path in ("/inbox/", "/dashboard/", "/admin/", "/api/docs/"):
        as_manager.page(path, manager)

    if failures:
        sys.exit(f"production smoke: {len(failures)} check(s) failed")
    print("production smoke checks: ok")


if __name__ == "__main__":
    main()
