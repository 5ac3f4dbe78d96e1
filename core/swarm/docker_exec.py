"""A command run in a container through the engine's exec API, its output streamed.

Without stdin, stdout comes from ``exec_start(stream=True, demux=True)`` chunk by chunk;
with stdin, the hijacked socket carries the input from a writer thread (then a half-close,
which the engine passes on as end of input) while the frames of output are read here.
Either way nothing is held whole: stdout is yielded as it arrives, stderr keeps its tail.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import docker
import requests
from docker.utils.socket import STDERR, frames_iter

from core.errors import EngineUnavailable

STDERR_KEEP = 8192
EXIT_POLLS = 100  # × 0.05 s: how long an exec may take to report its end after its output
IDLE_SECONDS = 3600.0  # a restore may stay silent while it builds indexes


class DockerExec:
    def __init__(
        self,
        api: docker.APIClient,
        container_id: str,
        argv: Sequence[str],
        env: dict[str, str] | None,
        user: str | None,
        stdin: Iterable[bytes] | None,
    ) -> None:
        self.api = api
        self._stdin = stdin
        self._err = bytearray()
        self._code: int | None = None
        self._sock: socket.socket | None = None
        self._raw: Any = None  # the SDK's file over the socket: it holds the fd open too
        self._writer_error: BaseException | None = None
        self.exec_id = api.exec_create(
            container_id,
            list(argv),
            stdout=True,
            stderr=True,
            stdin=stdin is not None,
            environment=env or None,
            user=user or "",
        )["Id"]

    def _keep_err(self, data: bytes) -> None:
        self._err += data
        del self._err[:-STDERR_KEEP]

    def stdout(self) -> Iterator[bytes]:
        try:
            yield from self._stdout()
        except (
            requests.exceptions.RequestException,
            docker.errors.DockerException,
            OSError,
        ) as exc:
            raise EngineUnavailable(
                f"the exec stream from the Docker engine broke: {type(exc).__name__}: {exc}"
            ) from exc

    def _stdout(self) -> Iterator[bytes]:
        # the hijacked socket either way, closed here once the output ended (the SDK's
        # stream=True leaves its socket open until the garbage collector finds it)
        raw = self.api.exec_start(self.exec_id, socket=True)
        sock: socket.socket = getattr(raw, "_sock", raw)
        sock.settimeout(IDLE_SECONDS)
        self._sock, self._raw = sock, raw
        writer = None
        if self._stdin is not None:
            writer = threading.Thread(target=self._write, args=(sock, self._stdin), daemon=True)
            writer.start()
        try:
            for stream, data in frames_iter(raw, tty=False):
                if stream == STDERR:
                    self._keep_err(data)
                elif data:
                    yield data
        finally:
            if writer is not None:
                writer.join(timeout=IDLE_SECONDS)
            self.close()
        if self._writer_error is not None:
            raise self._writer_error
        self._code = self._wait_exit()

    def _write(self, sock: socket.socket, chunks: Iterable[bytes]) -> None:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except BaseException as exc:  # handed to the reader, which raises it
            self._writer_error = exc
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)

    def _wait_exit(self) -> int | None:
        for _ in range(EXIT_POLLS):
            state = self.api.exec_inspect(self.exec_id)
            if not state.get("Running"):
                return state.get("ExitCode")
            time.sleep(0.05)
        raise EngineUnavailable("the command's output ended but the engine says it still runs")

    def exit_code(self) -> int | None:
        return self._code

    def stderr(self) -> str:
        return self._err.decode("utf-8", errors="replace").strip()

    def close(self) -> None:
        for held in (self._raw, self._sock):
            if held is not None:
                with contextlib.suppress(OSError):
                    held.close()
