"""A loopback HTTP/1.1 proxy that can cut one request part-way through its body, as a phone's connection
drops in the middle of an upload. It logs every request (method, path, Upload-Offset) it forwards."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RequestHead:
    method: str
    path: str
    headers: dict[str, str]

    @property
    def length(self) -> int:
        return int(self.headers.get("content-length", "0") or 0)


# (request, body bytes forwarded so far) -> cut the connection now?
CutRule = Callable[[RequestHead, int], bool]


@dataclass
class CuttingProxy:
    upstream_host: str
    upstream_port: int
    cut: CutRule
    log: list[str] = field(default_factory=list)
    cuts: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and close every connection still open (no socket outlives the test)."""
        if self._server:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        for writer in list(self._writers):
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server:
            await self._server.wait_closed()

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task:
            self._tasks.add(task)
        self._writers.add(client_writer)
        up_writer: asyncio.StreamWriter | None = None
        back: asyncio.Task[None] | None = None
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
            self._writers.add(up_writer)
            back = asyncio.create_task(self._copy(up_reader, client_writer))
            await self._requests(client_reader, up_writer)
        except OSError:
            pass
        finally:
            if back:
                back.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await back
            for writer in (up_writer, client_writer):
                if writer is None:
                    continue
                writer.close()
                with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                    await writer.wait_closed()
                self._writers.discard(writer)
            if task:
                self._tasks.discard(task)

    @staticmethod
    async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    @staticmethod
    def _closing(lines: list[str]) -> bytes:
        """The request head with `Connection: close`, so the browser never reuses a socket: Chromium retries a
        request silently when a reused keep-alive socket drops, and the app would never see the failure."""
        kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith(("connection:", "keep-alive:"))]
        return "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")

    async def _requests(self, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter) -> None:
        """Forward requests one by one, reading each head and body (Content-Length) to know where it ends."""
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                lines = raw.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                head = RequestHead(method, path, headers)
                self.log.append(f"{method} {path.split('?')[0]} {headers.get('upload-offset', '')}".strip())
                upstream.write(self._closing(lines))
                sent = 0
                while sent < head.length:
                    piece = await reader.read(min(65536, head.length - sent))
                    if not piece:
                        return
                    if self.cut(head, sent):
                        self.cuts += 1
                        self.log.append(f"CUT after {sent} bytes")
                        return  # both sides are closed: the phone sees a dropped connection
                    upstream.write(piece)
                    await upstream.drain()
                    sent += len(piece)
                await upstream.drain()
