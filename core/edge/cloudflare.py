"""The executor of DNS actions: Cloudflare's API through its official SDK.

Every call has a timeout, and every failure becomes one ``DnsError`` line a person can act
on; the token is masked in anything that could carry it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import cloudflare
from cloudflare import AsyncCloudflare

from core.edge.dns import (
    OWNER_PREFIX,
    Action,
    DnsConfig,
    DnsError,
    Record,
    desired,
    diff,
    owner_comment,
)
from core.secrets import Masker

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

    def __init__(self, client: AsyncCloudflare, config: DnsConfig, zone_id: str) -> None:
        self.client = client
        self.config = config
        self.id = zone_id

    async def records(self, names: list[str], comment: str) -> list[Record]:
        """The records at ``names`` and those carrying ``comment``, each once."""
        found: dict[str, Record] = {}
        queries: list[dict[str, Any]] = [{"name": {"exact": n}} for n in names]
        queries.append({"comment": {"exact": comment}})
        for query in queries:
            for record in await self._list(query):
                found[record.id] = record
        return sorted(found.values())

    async def managed(self) -> list[Record]:
        """Every record shipbot made in the zone."""
        return sorted(await self._list({"comment": {"startswith": OWNER_PREFIX}}))

    async def _list(self, query: dict[str, Any]) -> list[Record]:
        with _mapped("list DNS records"):
            pages = self.client.dns.records.list(zone_id=self.id, per_page=PER_PAGE, **query)
            return [_record(r) async for r in pages]

    async def apply(self, actions: list[Action]) -> None:
        records = self.client.dns.records
        for action in actions:
            if action.kind == "delete":
                assert action.old is not None
                with _mapped(f"delete {action.old.type} {action.old.name}"):
                    await records.delete(action.old.id, zone_id=self.id)
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
            with _mapped(f"{action.kind} {new.type} {new.name}"):
                if action.kind == "create":
                    await records.create(zone_id=self.id, **fields)
                else:
                    assert action.old is not None
                    await records.edit(action.old.id, zone_id=self.id, **fields)


@asynccontextmanager
async def zone(config: DnsConfig, api_token: str) -> AsyncIterator[Zone]:
    """The configured zone through a client that lives as long as the block."""
    masker = Masker([api_token])
    client = AsyncCloudflare(
        api_token=api_token,
        base_url=config.api_url,
        timeout=config.timeout_seconds,
        max_retries=2,
    )
    # The SDK falls back to these variables from the environment, and prefers them to the
    # token: only the token shipbot was given may speak for it.
    client.api_key = client.api_email = client.user_service_key = None
    try:
        async with client:
            with _mapped(f"find zone {config.zone}"):
                zones = (await client.zones.list(name=config.zone)).result  # names are unique
            if not zones:
                raise DnsError(f"zone {config.zone} not found for this token")
            yield Zone(client, config, zones[0].id)
    except DnsError as exc:
        raise DnsError(masker(str(exc))) from exc.__cause__


async def sync(config: DnsConfig, app: str, env: str, domains: list[str]) -> list[Action]:
    """Make the zone hold the records ``domains`` need for app/env; returns every action,
    ``keep`` included. A second sync is all ``keep``."""
    want = desired(app, env, domains, config)
    async with zone(config, token(config)) as where:
        names = sorted({r.name for r in want})
        actions = diff(want, await where.records(names, owner_comment(app, env)), app, env)
        await where.apply(actions)
    return actions


async def managed(config: DnsConfig) -> list[Record]:
    async with zone(config, token(config)) as where:
        return await where.managed()


def _record(item: Any) -> Record:
    return Record(
        name=item.name,
        type=item.type,
        content=item.content or "",
        proxied=bool(item.proxied),
        ttl=int(item.ttl or 1),
        comment=item.comment or "",
        id=item.id,
    )


class _mapped:
    """SDK errors as one line: what shipbot tried, and what to do about it."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or not isinstance(exc, cloudflare.CloudflareError):
            return
        if isinstance(exc, cloudflare.AuthenticationError | cloudflare.PermissionDeniedError):
            raise DnsError(REFUSED) from exc
        if isinstance(exc, cloudflare.APITimeoutError):
            raise DnsError(f"Cloudflare did not answer in time to {self.what}") from exc
        if isinstance(exc, cloudflare.APIConnectionError):
            raise DnsError(f"cannot reach Cloudflare's API to {self.what}: {exc}") from exc
        if isinstance(exc, cloudflare.APIStatusError):
            errors = "; ".join(f"{e.message} ({e.code})" for e in exc.errors) or exc.message
            raise DnsError(f"Cloudflare refused to {self.what}: {errors}") from exc
        raise DnsError(f"Cloudflare call failed to {self.what}: {exc}") from exc
