"""``shipbot``: the console chat, one-shot chat messages and the version.

The entry point imports the standard library only: ``--version`` and ``health`` (the
image's HEALTHCHECK, run every few seconds on a possibly busy manager) answer from here;
``chat TEXT [--as USER] [--json]`` runs in ``bot.chat_line`` and ``serve [--interval N]`` in
``bot.serve``, both without Typer (so the bot idles without it, ~2 MB resident); every
other command loads the Typer app in ``bot.cli_app`` and, through it, what it needs.
"""

from __future__ import annotations

import sys


def _health(argv: list[str]) -> int | None:
    """``shipbot health [--max-age SECONDS]``'s exit status; None for any other spelling
    (Typer then parses it and says what is wrong)."""
    from bot.self_deploy import MAX_AGE_SECONDS, health, home_folder

    max_age = MAX_AGE_SECONDS
    if argv[:1] == ["--max-age"] and len(argv) == 2:
        try:
            max_age = float(argv[1])
        except ValueError:
            return None
    elif argv:
        return None
    ok, text = health(home_folder(), max_age)
    print(("✅ " if ok else "❌ ") + text, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _serve_interval(argv: list[str]) -> float | None:
    """The interval of ``serve``'s arguments in their plain spelling (none, ``--interval N``
    or ``--interval=N``); None for any other (Typer then parses it and says what is wrong)."""
    if not argv:
        from bot.self_deploy import SERVE_INTERVAL  # noqa: PLC0415 (standard library only)

        return SERVE_INTERVAL
    if len(argv) == 2 and argv[0] == "--interval":
        value = argv[1]
    elif len(argv) == 1 and argv[0].startswith("--interval="):
        value = argv[0].removeprefix("--interval=")
    else:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def main() -> None:
    argv = sys.argv[1:]
    if argv == ["--version"]:
        from importlib.metadata import version

        print(f"shipbot {version('shipbot')}")
        return
    if argv[:1] == ["health"]:
        code = _health(argv[1:])
        if code is not None:
            raise SystemExit(code)
    if argv[:1] == ["chat"]:
        from bot.chat_line import run  # the plain spelling, without Typer and Click

        code = run(argv[1:])
        if code is not None:
            raise SystemExit(code)
    interval = _serve_interval(argv[1:]) if argv[:1] == ["serve"] else None
    if interval is not None:
        from bot.chat_line import start_logging
        from bot.serve import command

        start_logging()
        raise SystemExit(command(interval))
    from bot.cli_app import app

    app()


if __name__ == "__main__":
    main()
