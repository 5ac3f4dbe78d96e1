"""The executor of DNS actions: Cloudflare's v4 API, spoken directly over HTTP.

Five calls are all shipbot needs (find the zone; list, create, patch and delete records), so
it speaks them with httpx rather than the 100 MB SDK. Every call has a timeout and up to two
retries of what Cloudflare documents as passing (429, 5xx, a dropped connection); every
failure becomes one ``DnsError`` line a person can act on; the token is masked in anything
that could carry it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from core.edge.dns import (
    OWNER_PREFIX,
    Action,
    DnsConfig,
    DnsError,
    Record,
    Target,
    desired,
    diff,
    owner_comment,
)
from core.secrets import Masker

if TYPE_CHECKING:
    import httpx

PER_PAGE = 1000
REFUSED = "Cloudflare refused the token: check its Zone.DNS edit permission"


def token(config: DnsConfig, environ: Mapping[str, str] | None = None) -> str:
    value = (os.environ if environ is None else environ).get(config.token_env, "").strip()
    if not value:
        raise DnsError(
            f"no Cloudflare API token: set {config.token_env} in shipbot's environment "
            "to a token with Zone.DNS edit permission on " + config.zone
        )
    return value


class Zone:
    """One zone, reached with one token: reads records and applies actions."""

    def __init__(self, api: Api, config: DnsConfig, zone_id: str) -> None:
        self.api = api
        self.config = config
        self.id = zone_id

    async def records(self, names: list[str], comment: str) -> list[Record]:
        """The records at ``names`` and those carrying ``comment``, each once."""
        found: dict[str, Record] = {}
        queries = [{"name.exact": n} for n in names]
        queries.append({"comment.exact": comment})
        for query in queries:
            for record in await self._list(query):
                found[record.id] = record
        return sorted(found.values())

    async def managed(self) -> list[Record]:
        """Every record shipbot made in the zone."""
        return sorted(await self._list({"comment.startswith": OWNER_PREFIX}))

    async def _list(self, query: dict[str, str]) -> list[Record]:
        path = f"zones/{self.id}/dns_records"
        items = await self.api.pages(path, query, "list DNS records")
        return [_record(item) for item in items]

    async def apply(self, actions: list[Action]) -> None:
        records = f"zones/{self.id}/dns_records"
        for action in actions:
            if action.kind == "delete":
                assert action.old is not None
                what = f"delete {action.old.type} {action.old.name}"
                await self.api.call("DELETE", f"{records}/{action.old.id}", what)
                continue
            if action.kind == "keep":
                continue
            new = action.record
            assert new is not None
            fields: dict[str, Any] = dict(
                name=new.name,
                type=new.type,
                content=new.content,
                proxied=new.proxied,
                ttl=new.ttl,
                comment=new.comment,
            )
            what = f"{action.kind} {new.type} {new.name}"
            if action.kind == "create":
                await self.api.call("POST", records, what, body=fields)
            else:
                assert action.old is not None
                await self.api.call("PATCH", f"{records}/{action.old.id}", what, body=fields)


@asynccontextmanager
async def zone(
    config: DnsConfig, api_token: str, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[Zone]:
    """The configured zone through a client that lives as long as the block. ``transport``
    replaces the network (httpx's ``MockTransport`` in a test); only ``api_token`` speaks
    for shipbot, whatever the environment holds."""
    import httpx  # loads with the first DNS call, not with every command line

    masker = Masker([api_token])
    client = httpx.AsyncClient(
        base_url=config.api_url.rstrip("/") + "/",
        headers={"Authorization": f"Bearer {api_token}"},
        timeout=config.timeout_seconds,
        transport=transport,
        trust_env=False,
    )
    try:
        async with client:
            api = Api(client)
            what = f"find zone {config.zone}"
            zones = await api.call("GET", "zones", what, params={"name": config.zone})
            if not zones:  # names are unique
                raise DnsError(f"zone {config.zone} not found for this token")
            yield Zone(api, config, zones[0]["id"])
    except DnsError as exc:
        raise DnsError(masker(str(exc))) from exc.__cause__


async def sync(
    config: DnsConfig,
    app: str,
    env: str,
    domains: list[str],
    to: list[Target] | None = None,
) -> list[Action]:
    """Make the zone hold the records ``domains`` need for app/env, pointing ``to`` (the
    control plane's own server's targets by default); returns every action, ``keep``
    included. A second sync is all ``keep``."""
    want = desired(app, env, domains, config, to)
    async with zone(config, token(config)) as where:
        names = sorted({r.name for r in want})
        actions = diff(want, await where.records(names, owner_comment(app, env)), app, env)
        await where.apply(actions)
    return actions


async def repoint(config: DnsConfig, app: str, env: str, to: list[Target]) -> list[Action]:
    """Point the records app/env already has (the names shipbot made for it) ``to`` new
    targets; nothing when it has none. Reads no app.yml: the names are the records'."""
    comment = owner_comment(app, env)
    async with zone(config, token(config)) as where:
        names = sorted({r.name for r in await where.records([], comment)})
        if not names:
            return []
        want = desired(app, env, names, config, to)
        actions = diff(want, await where.records(names, comment), app, env)
        await where.apply(actions)
    return actions


async def managed(config: DnsConfig) -> list[Record]:
    async with zone(config, token(config)) as where:
        return await where.managed()


def _record(item: dict[str, Any]) -> Record:
    return Record(
        name=item["name"],
        type=item["type"],
        content=item.get("content") or "",
        proxied=bool(item.get("proxied")),
        ttl=int(item.get("ttl") or 1),
        comment=item.get("comment") or "",
        id=item["id"],
    )


class Api:
    """Cloudflare's v4 envelope over one client: a call's ``result``, or one ``DnsError``."""

    RETRIES = 2
    RETRY_STATUS = frozenset({429, 500, 502, 503, 504})

    def __init__(
        self, client: httpx.AsyncClient, backoff: float = 0.5, per_page: int = PER_PAGE
    ) -> None:
        self.client = client
        self.backoff = backoff
        self.per_page = per_page

    async def pages(self, path: str, query: dict[str, str], what: str) -> list[Any]:
        """Every item of a paginated list, page after page."""
        items: list[Any] = []
        page = 1
        while True:
            params = {**query, "page": str(page), "per_page": str(self.per_page)}
            envelope = await self._envelope("GET", path, what, params=params)
            chunk = envelope.get("result") or []
            items.extend(chunk)
            pages = (envelope.get("result_info") or {}).get("total_pages")
            last = pages is not None and page >= int(pages)
            if not chunk or last or len(chunk) < self.per_page:
                return items
            page += 1

    async def call(
        self,
        method: str,
        path: str,
        what: str,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        return (await self._envelope(method, path, what, params=params, body=body))["result"]

    async def _envelope(
        self,
        method: str,
        path: str,
        what: str,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        import httpx  # loaded already: ``self.client`` is one

        for attempt in range(self.RETRIES + 1):
            last = attempt == self.RETRIES
            try:
                answer = await self.client.request(method, path, params=params, json=body)
            except httpx.TimeoutException as exc:
                if last:
                    raise DnsError(f"Cloudflare did not answer in time to {what}") from exc
            except httpx.TransportError as exc:
                if last:
                    raise DnsError(f"cannot reach Cloudflare's API to {what}: {exc}") from exc
            else:
                if answer.status_code not in self.RETRY_STATUS or last:
                    return _checked(answer, what)
            await asyncio.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")


def _checked(answer: httpx.Response, what: str) -> dict[str, Any]:
    """The envelope of a successful answer; otherwise the one line a person can act on."""
    try:
        envelope = answer.json()
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict):
        raise DnsError(
            f"Cloudflare answered {answer.status_code} with no JSON to {what}: "
            "check dns.api_url in shipbot.yml"
        )
    if answer.status_code in (401, 403):
        raise DnsError(REFUSED)
    if answer.is_success and envelope.get("success", True):
        return envelope
    errors = "; ".join(
        f"{e.get('message')} ({e.get('code')})"
        for e in envelope.get("errors") or []
        if isinstance(e, dict)
    )
    raise DnsError(f"Cloudflare refused to {what}: {errors or f'HTTP {answer.status_code}'}")
