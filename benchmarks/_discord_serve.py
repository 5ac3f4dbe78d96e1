"""``shipbot serve`` with discord.py's gateway at GATEWAY_URL (the loopback gateway of
benchmarks/_fake_gateway.py), for benchmarks/slack_ack.py. Apart from the fake gateway, so
the process whose memory is measured carries nothing of the harness (tests.*, the fakes).

python -m benchmarks._discord_serve GATEWAY_URL [SERVE_OPTION…]  (then as ``shipbot serve``)
"""

from __future__ import annotations

import sys


def serve(gateway: str, *options: str) -> None:
    """``shipbot serve OPTIONS…``, its Discord client's gateway at ``gateway`` (loopback)."""
    import discord.gateway
    import yarl

    from bot.cli import main

    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    sys.argv = ["shipbot", "serve", *options]
    main()


if __name__ == "__main__":
    serve(*sys.argv[1:])
