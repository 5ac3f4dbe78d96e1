"""The chat side, written once for every platform: grammar, dispatch, replies."""
