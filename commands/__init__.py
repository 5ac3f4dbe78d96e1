"""The chat side, written once for every platform: grammar, dispatch, replies."""

from commands import catalog as catalog  # registers every command with the grammar
