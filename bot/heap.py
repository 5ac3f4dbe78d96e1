"""What ``serve`` made while it came up, frozen out of the garbage collector's full passes.

What serve imports and builds at start (some 1,200 modules, Bolt's, discord.py's and the
watchers' objects) lives as long as the process. The collector's full passes walk all of it
again each time, tens of milliseconds with discord.py connected, during which no Slack
request is answered: under a burst of 50 at once (benchmarks/slack_ack.py) the ack p99
ratio to bare Bolt was 2.2 and 3.1 in two runs, 1.00 and 0.87 with the freeze. So once the
adapters are up (the second housekeeping round), what is left after one collection moves
to the permanent generation those passes skip. It is frozen only once: objects made later
are collected as before, and refcounting still frees frozen objects nobody holds; only
cycles among what was alive at that moment are never collected.
"""

from __future__ import annotations

import gc
import logging
import threading

log = logging.getLogger("shipbot.serve")
AFTER_ROUNDS = 2  # the first round runs as serve starts, before Discord has identified


class FreezeOnce:
    """A housekeeping round: on the ``after``-th call, collect and freeze; never again."""

    def __init__(self, after: int = AFTER_ROUNDS) -> None:
        self.after = after
        self.calls = 0
        self._lock = threading.Lock()  # rounds run in worker threads

    def __call__(self) -> None:
        with self._lock:
            self.calls += 1
            if self.calls != self.after:
                return
        gc.collect()
        gc.freeze()
        log.info("froze %d objects made while serve came up", gc.get_freeze_count())
