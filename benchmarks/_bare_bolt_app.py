"""Baseline for benchmarks/slack_ack.py: a Bolt app whose /ship listener only acks.

python benchmarks/_bare_bolt_app.py PORT SIGNING_SECRET SLACK_API_URL
"""

from __future__ import annotations

import sys

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def main() -> None:
    port, secret, api_url = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    app = AsyncApp(
        client=AsyncWebClient(token="xoxb-bench", base_url=api_url), signing_secret=secret
    )

    @app.command("/ship")
    async def ship(ack):  # noqa: ANN001 (Bolt injects by name)
        await ack()

    from aiohttp import web

    web.run_app(
        app.web_app(path="/slack/events"),
        host="127.0.0.1",
        port=port,
        print=None,
        handle_signals=True,
    )


if __name__ == "__main__":
    main()
