"""One small error hierarchy for the core layer.

Every message is written for a person reading it in a chat channel: it says what went
wrong and what to do. Library exceptions are chained (``raise ... from exc``) so the
stack trace still reaches the logs.
"""


class CoreError(Exception):
    """Base of every error the engine reports to a user."""


class AppSpecError(CoreError):
    """An ``app.yml`` is missing, unreadable or invalid; the message names the field."""


class UnknownApp(CoreError):
    """The app is not registered."""


class EngineUnavailable(CoreError):
    """The Docker engine could not be reached or is not a swarm manager."""


class BuildError(CoreError):
    """Building the image failed; the message carries the last lines of the build log."""

    def __init__(self, message: str, log_tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.log_tail = log_tail or []


class DeployError(CoreError):
    """A deploy, rollback, scale or restart could not be carried out."""


class SourceError(CoreError):
    """The app's source (a folder or a git repository) cannot be used."""


class BuildTimedOut(BuildError):
    """A build ran past its time limit and was stopped (shipbot.yml ``build.timeout_seconds``)."""
