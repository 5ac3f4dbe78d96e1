"""An aiohttp app served on 127.0.0.1 at a free port, for the fakes of chat APIs."""

from __future__ import annotations

from aiohttp import web


class LoopbackServer:
    """Subclasses add their routes in ``routes``; ``start`` returns the running server."""

    port: int = 0
    _runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self):  # noqa: ANN201 (returns the subclass)
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
