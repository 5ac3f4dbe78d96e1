"""Pipelines: git webhooks that deploy on push, and preview environments per pull request.

Pure parts (signatures, events, mapping, the preview spec) are apart from the executors
(resolving a pull request's head, tearing a preview down, commenting on the forge).
"""

from core.errors import CoreError


class PipelineError(CoreError):
    """A webhook event or a preview cannot be handled; the message says why."""
