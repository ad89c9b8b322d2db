"""Local HTTP servers that answer like Salesforce, HubSpot and a webhook receiver.

Each runs `http.server` in a thread on 127.0.0.1 with an ephemeral port. Their answers
follow the vendors' docs and the recorded exchanges in the team's vendor samples
(shared/vendor-samples/, not in this repository)
(status codes, body shapes, headers such as Sforce-Limit-Info, HubSpot's 409 text and its
429 without Retry-After). `script` holds canned replies served before normal behaviour,
so a test can say "the next call gets a 503".
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    received_at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeServer:
    """A threaded HTTP server delegating each request to `self.handle`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: list[Reply] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> FakeServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, the body waits for
            # the client's delayed ACK (~40 ms a response).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                recorded = Recorded(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k: v for k, v in self.headers.items()},
                    body=body,
                    received_at=time.time(),
                )
                reply = owner._dispatch(recorded)
                if reply.delay:
                    time.sleep(reply.delay)
                raw = b""
                if reply.body is not None:
                    raw = (
                        reply.body
                        if isinstance(reply.body, bytes)
                        else json.dumps(reply.body).encode()
                    )
                try:
                    self.send_response(reply.status)
                    headers = {"Content-Type": "application/json;charset=UTF-8", **reply.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    if raw:
                        self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- behaviour ---------------------------------------------------------------
    def _dispatch(self, request: Recorded) -> Reply:
        with self.lock:
            self.requests.append(request)
            if self.script:
                return self.script.pop(0)
            return self.handle(request)

    def handle(self, request: Recorded) -> Reply:
        return Reply(200, {"ok": True})


class WebhookReceiver(FakeServer):
    """Accepts every POST with 200 {"id": "<n>"}, unless scripted otherwise."""

    def __init__(self, on_request: Callable[[Recorded], None] | None = None) -> None:
        super().__init__()
        self.on_request = on_request

    def handle(self, request: Recorded) -> Reply:
        if self.on_request is not None:
            self.on_request(request)
        return Reply(200, {"id": f"rcv-{len(self.requests)}"})


SF_LIMIT = 15000


class FakeSalesforce(FakeServer):
    """OAuth token endpoint + Lead upsert by external id + converted-lead follow-up."""

    def __init__(self, *, ext_field: str = "LeadFlow_Id__c", api_version: str = "60.0") -> None:
        super().__init__()
        self.ext_field = ext_field
        self.api = f"/services/data/v{api_version}"
        self.valid_tokens: set[str] = set()
        self.token_count = 0
        self.api_usage = 8370
        # ext id value → {"Id", "fields", "converted", "contact", "opportunity"}
        self.leads: dict[str, dict[str, Any]] = {}
        self.contacts: dict[str, dict[str, Any]] = {}
        self.duplicates: set[str] = set()  # ext ids that match two records (→ 300)
        self.required = ("LastName", "Company")
        self.token_error: Reply | None = None

    def issue_token(self) -> str:
        self.token_count += 1
        token = f"00Dtok{self.token_count}"
        self.valid_tokens.add(token)
        return token

    def _limit(self) -> dict[str, str]:
        self.api_usage += 1
        return {"Sforce-Limit-Info": f"api-usage={self.api_usage}/{SF_LIMIT}"}

    def handle(self, request: Recorded) -> Reply:
        if request.path == "/services/oauth2/token":
            if self.token_error is not None:
                return self.token_error
            token = self.issue_token()
            return Reply(
                200,
                {
                    "access_token": token,
                    "instance_url": self.url,
                    "id": f"{self.url}/id/00D/005",
                    "token_type": "Bearer",
                    "issued_at": "1700000000000",
                    "signature": "sig",
                },
            )
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.valid_tokens:
            return Reply(
                401,
                [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                self._limit(),
            )
        lead_path = re.fullmatch(
            rf"{self.api}/sobjects/Lead/{self.ext_field}/([^/]+)", request.path
        )
        if lead_path and request.method == "PATCH":
            return self._upsert(lead_path.group(1), request.json or {})
        if lead_path and request.method == "GET":
            return self._get(lead_path.group(1), request.query)
        other = re.fullmatch(rf"{self.api}/sobjects/(Contact|Opportunity)/([^/]+)", request.path)
        if other and request.method == "PATCH":
            self.contacts.setdefault(other.group(2), {}).update(request.json or {})
            return Reply(204, None, self._limit())
        return Reply(
            404,
            [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}],
            self._limit(),
        )

    def _upsert(self, value: str, fields: dict[str, Any]) -> Reply:
        if value in self.duplicates:
            return Reply(
                300,
                [f"{self.api}/sobjects/Lead/00Qdup1", f"{self.api}/sobjects/Lead/00Qdup2"],
                self._limit(),
            )
        if self.ext_field in fields or "Id" in fields:
            return Reply(
                400,
                [{"message": "Id/ext id in body", "errorCode": "INVALID_FIELD", "fields": []}],
                self._limit(),
            )
        record = self.leads.get(value)
        if record is not None and record["converted"]:
            return Reply(
                400,
                [
                    {
                        "message": "cannot reference converted lead",
                        "errorCode": "CANNOT_UPDATE_CONVERTED_LEAD",
                        "fields": [],
                    }
                ],
                self._limit(),
            )
        merged = {**(record["fields"] if record else {}), **fields}
        missing = [name for name in self.required if not merged.get(name)]
        if missing:
            return Reply(
                400,
                [
                    {
                        "message": f"Required fields are missing: [{', '.join(missing)}]",
                        "errorCode": "REQUIRED_FIELD_MISSING",
                        "fields": missing,
                    }
                ],
                self._limit(),
            )
        if record is None:
            record_id = f"00Q4S{len(self.leads) + 1:013d}"
            self.leads[value] = {
                "Id": record_id,
                "fields": merged,
                "converted": False,
                "contact": None,
                "opportunity": None,
            }
            return Reply(
                201,
                {"id": record_id, "success": True, "errors": [], "created": True},
                {**self._limit(), "Location": f"{self.api}/sobjects/Lead/{record_id}"},
            )
        record["fields"] = merged
        return Reply(
            200,
            {"id": record["Id"], "success": True, "errors": [], "created": False},
            self._limit(),
        )

    def _get(self, value: str, query: dict[str, list[str]]) -> Reply:
        record = self.leads.get(value)
        if record is None:
            return Reply(
                404,
                [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
                self._limit(),
            )
        full = {
            "attributes": {"type": "Lead", "url": f"{self.api}/sobjects/Lead/{record['Id']}"},
            "Id": record["Id"],
            "IsConverted": record["converted"],
            "ConvertedContactId": record["contact"],
            "ConvertedOpportunityId": record["opportunity"],
            "Status": "Closed - Converted" if record["converted"] else "Open - Not Contacted",
            **record["fields"],
        }
        wanted = query.get("fields", [""])[0].split(",") if query.get("fields") else None
        if wanted:
            full = {k: v for k, v in full.items() if k in wanted or k == "attributes"}
        return Reply(200, full, self._limit())

    def convert(self, value: str, *, contact: str, opportunity: str | None) -> None:
        record = self.leads[value]
        record.update(converted=True, contact=contact, opportunity=opportunity)


HS_RATE_HEADERS = {
    "X-HubSpot-RateLimit-Daily": "250000",
    "X-HubSpot-RateLimit-Daily-Remaining": "248569",
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    "X-HubSpot-RateLimit-Max": "100",
    "X-HubSpot-RateLimit-Remaining": "98",
    "X-HubSpot-RateLimit-Secondly": "10",
    "X-HubSpot-RateLimit-Secondly-Remaining": "9",
}


def hubspot_429() -> Reply:
    """The recorded secondly-limit answer: no Retry-After, no interval header either."""
    return Reply(
        429,
        {
            "status": "error",
            "message": "You have reached your secondly limit.",
            "correlationId": str(uuid.uuid4()),
            "category": "RATE_LIMITS",
        },
        {
            "X-HubSpot-RateLimit-Daily": "250000",
            "X-HubSpot-RateLimit-Daily-Remaining": "248572",
        },
    )


class FakeHubSpot(FakeServer):
    """CRM v3 contacts: create (201), 409 on an existing e-mail, update by id."""

    def __init__(self, *, token: str = "pat-na1-test") -> None:
        super().__init__()
        self.token = token
        self.contacts: dict[str, dict[str, Any]] = {}
        self.next_id = 37765128953

    def by_email(self, email: str) -> str | None:
        for contact_id, props in self.contacts.items():
            if props.get("email", "").lower() == email.lower():
                return contact_id
        return None

    def handle(self, request: Recorded) -> Reply:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return Reply(
                401,
                {
                    "status": "error",
                    "message": "Authentication credentials not found.",
                    "correlationId": str(uuid.uuid4()),
                    "category": "INVALID_AUTHENTICATION",
                },
            )
        if request.path == "/crm/v3/objects/contacts" and request.method == "POST":
            props = (request.json or {}).get("properties", {})
            existing = self.by_email(props.get("email", ""))
            if existing is not None:
                return Reply(
                    409,
                    {
                        "status": "error",
                        "message": f"Contact already exists. Existing ID: {existing}",
                        "correlationId": str(uuid.uuid4()),
                        "category": "CONFLICT",
                    },
                    HS_RATE_HEADERS,
                )
            contact_id = str(self.next_id)
            self.next_id += 1
            self.contacts[contact_id] = dict(props)
            return Reply(
                201,
                {
                    "id": contact_id,
                    "properties": {**props, "hs_object_id": contact_id},
                    "createdAt": "2026-11-02T01:00:00.000Z",
                    "updatedAt": "2026-11-02T01:00:00.000Z",
                    "archived": False,
                },
                HS_RATE_HEADERS,
            )
        found = re.fullmatch(r"/crm/v3/objects/contacts/(\d+)", request.path)
        if found and request.method == "PATCH":
            contact_id = found.group(1)
            if contact_id not in self.contacts:
                return Reply(
                    404,
                    {
                        "status": "error",
                        "message": "resource not found",
                        "correlationId": str(uuid.uuid4()),
                        "category": "OBJECT_NOT_FOUND",
                    },
                )
            self.contacts[contact_id].update((request.json or {}).get("properties", {}))
            return Reply(
                200,
                {"id": contact_id, "properties": self.contacts[contact_id], "archived": False},
                HS_RATE_HEADERS,
            )
        return Reply(404, {"status": "error", "message": "not found", "category": "NOT_FOUND"})
