"""The deployment engine: usable without any chat (the CLI and tests call it directly)."""
