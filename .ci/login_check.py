"""Log in through the real login form (CSRF and all) and check the home page knows us."""

import http.cookiejar
import re
import sys
import urllib.parse
import urllib.request

base, username, password = sys.argv[1:4]
if not base.startswith("http://127.0.0.1:"):
    sys.exit("only the local server is checked")
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
page = opener.open(f"{base}/accounts/login/").read().decode()
token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
body = urllib.parse.urlencode(
    {"username": username, "password": password, "csrfmiddlewaretoken": token, "next": "/"}
).encode()
login = urllib.request.Request(  # noqa: S310 - the local server checked above
    f"{base}/accounts/login/", data=body, headers={"Referer": f"{base}/accounts/login/"}
)
home = opener.open(login).read().decode()
if "accounts/logout" not in home:
    sys.exit(f"login as {username} failed")
print(f"logged in as {username}: ok")
