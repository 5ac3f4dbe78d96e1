"""A local fake of Cloudflare's v4 API for zones and DNS records, recording every call.

shipbot's client (core/edge/cloudflare.py) is pointed at it with ``dns.api_url``; nothing
in it is patched. It checks what the documentation says a call must be: the path, the bearer token,
list filters (``name.exact``, ``comment.exact``, ``comment.startswith``, ``page``,
``per_page``), and the JSON body of a create (POST), an overwrite (PUT) or a patch (PATCH),
refusing unknown fields and bad values with Cloudflare's own error codes, in Cloudflare's
envelope (``success``, ``errors``, ``messages``, ``result``, ``result_info``).
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.loopback import LoopbackServer

RECORD_FIELDS = {"name", "type", "content", "proxied", "ttl", "comment", "tags", "settings"}
TYPES = {"A", "AAAA", "CNAME", "TXT", "MX"}
WRITES = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None
    status: int = 200


class Refused(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class FakeCloudflare(LoopbackServer):
    """``tokens`` maps each token to the zones it may edit; ``readonly`` tokens may read."""

    zones: dict[str, str] = field(default_factory=lambda: {"example.com": "023e105f4ecef8ad"})
    tokens: dict[str, set[str]] = field(default_factory=dict)
    readonly: set[str] = field(default_factory=set)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> record
    calls: list[Call] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/client/v4"

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method in WRITES]

    def add(self, zone: str, **record: Any) -> str:
        """A record made outside shipbot (by a person, or an earlier sync)."""
        rid = f"rec{next(self._ids)}"
        full = {"proxied": False, "ttl": 1, "comment": None, **record}
        self.records[rid] = {"id": rid, "zone_id": self.zones[zone], **full}
        return rid

    def of(self, name: str) -> list[dict[str, Any]]:
        return sorted(
            (r for r in self.records.values() if r["name"] == name),
            key=lambda r: (r["type"], r["content"]),
        )

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/client/v4/{path:.*}", self._serve)

    async def _serve(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        call = Call(request.method, request.match_info["path"], dict(request.query), body)
        self.calls.append(call)
        try:
            result, info = self._route(request, call)
        except Refused as refused:
            call.status = refused.status
            return web.json_response(
                {
                    "success": False,
                    "errors": [{"code": refused.code, "message": refused.message}],
                    "messages": [],
                    "result": None,
                },
                status=refused.status,
            )
        envelope: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
        if info is not None:
            envelope["result_info"] = info
        return web.json_response(envelope)

    def _route(self, request: web.Request, call: Call) -> tuple[Any, dict | None]:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            raise Refused(403, 9109, "Invalid access token")
        parts = call.path.strip("/").split("/")
        if parts == ["zones"] and call.method == "GET":
            mine = [
                {"id": zid, "name": name, "status": "active"}
                for name, zid in self.zones.items()
                if name in self.tokens[token] and call.query.get("name", name) == name
            ]
            return self._page(mine, call.query)
        if len(parts) < 3 or parts[0] != "zones" or parts[2] != "dns_records":
            raise Refused(400, 7003, "Could not route to /" + call.path)
        zone = next((n for n, zid in self.zones.items() if zid == parts[1]), None)
        if zone is None or zone not in self.tokens[token]:
            raise Refused(403, 10000, "Authentication error")
        if call.method in WRITES and token in self.readonly:
            raise Refused(403, 10000, "Authentication error")
        if len(parts) == 3 and call.method == "GET":
            return self._page(self._listed(parts[1], call.query), call.query)
        if len(parts) == 3 and call.method == "POST":
            record = self._valid(zone, call.body, whole=True)
            rid = f"rec{next(self._ids)}"
            self._no_clash(zone, record, rid)
            self.records[rid] = {"id": rid, "zone_id": parts[1], **record}
            return self.records[rid], None
        if len(parts) != 4 or parts[3] not in self.records:
            raise Refused(404, 81044, "Record does not exist.")
        rid = parts[3]
        if call.method == "DELETE":
            del self.records[rid]
            return {"id": rid}, None
        if call.method in ("PUT", "PATCH"):
            record = self._valid(zone, call.body, whole=call.method == "PUT")
            merged = {**self.records[rid], **record}
            self._no_clash(zone, merged, rid)
            self.records[rid] = merged
            return merged, None
        raise Refused(405, 10405, f"Method {call.method} not allowed")

    def _listed(self, zone_id: str, query: dict[str, str]) -> list[dict[str, Any]]:
        known = {"name.exact", "comment.exact", "comment.startswith", "type", "page", "per_page"}
        unknown = set(query) - known
        if unknown:
            raise Refused(400, 9106, f"unexpected filter {sorted(unknown)}")
        out = []
        for record in self.records.values():
            comment = (record.get("comment") or "").lower()
            if record["zone_id"] != zone_id:
                continue
            if "name.exact" in query and record["name"] != query["name.exact"].lower():
                continue
            if "comment.exact" in query and comment != query["comment.exact"].lower():
                continue
            if "comment.startswith" in query and not comment.startswith(
                query["comment.startswith"].lower()
            ):
                continue
            if "type" in query and record["type"] != query["type"]:
                continue
            out.append(record)
        return sorted(out, key=lambda r: r["id"])

    @staticmethod
    def _page(items: list[Any], query: dict[str, str]) -> tuple[list[Any], dict[str, int]]:
        page, per_page = int(query.get("page", 1)), int(query.get("per_page", 20))
        if not 5 <= per_page <= 5_000_000 or page < 1:
            raise Refused(400, 1004, "DNS Validation Error: bad page or per_page")
        chunk = items[(page - 1) * per_page : page * per_page]
        total_pages = max(1, -(-len(items) // per_page))
        info = {
            "page": page,
            "per_page": per_page,
            "count": len(chunk),
            "total_count": len(items),
            "total_pages": total_pages,
        }
        return chunk, info

    def _valid(self, zone: str, body: Any, *, whole: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Refused(400, 9207, "Request body is invalid.")
        unknown = set(body) - RECORD_FIELDS
        if unknown:
            raise Refused(400, 9207, f"Request body has unknown fields {sorted(unknown)}")
        if whole and not {"name", "type", "content"} <= set(body):
            raise Refused(400, 9000, "DNS name, type and content are required")
        name = str(body.get("name", zone)).lower()
        if name != zone and not name.endswith("." + zone):
            raise Refused(400, 9005, "Content for name must be in the zone " + zone)
        kind = body.get("type", "A")
        if kind not in TYPES:
            raise Refused(400, 1004, f"DNS Validation Error: type {kind}")
        if "content" in body:
            self._content(kind, body["content"])
        ttl = body.get("ttl", 1)
        if not isinstance(ttl, int) or (ttl != 1 and not 60 <= ttl <= 86400):
            raise Refused(400, 9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1")
        if "proxied" in body and not isinstance(body["proxied"], bool):
            raise Refused(400, 9003, "Invalid 'proxied' value, must be a boolean")
        if body.get("proxied") and ttl != 1:
            raise Refused(400, 9021, "A proxied record's TTL must be 1 (automatic)")
        if len(body.get("comment") or "") > 100:
            raise Refused(400, 9106, "DNS record comment is too long (100 characters at most)")
        record = dict(body)
        if "name" in record:
            record["name"] = name
        return record

    @staticmethod
    def _content(kind: str, content: Any) -> None:
        valid = isinstance(content, str)
        if valid and kind in ("A", "AAAA"):
            try:
                valid = ipaddress.ip_address(content).version == (4 if kind == "A" else 6)
            except ValueError:
                valid = False
        if not valid:
            raise Refused(400, 9005, f"Content for {kind} record is invalid.")

    def _no_clash(self, zone: str, record: dict[str, Any], rid: str) -> None:
        zid = self.zones[zone]
        for other in self.records.values():
            if other["id"] == rid or other["zone_id"] != zid or other["name"] != record["name"]:
                continue
            if "CNAME" in (other["type"], record["type"]) and {other["type"], record["type"]} & {
                "A",
                "AAAA",
                "CNAME",
            }:
                raise Refused(
                    400, 81053, "An A, AAAA, or CNAME record with that host already exists."
                )
            if (other["type"], other["content"]) == (record["type"], record["content"]):
                raise Refused(400, 81058, "An identical record already exists.")
