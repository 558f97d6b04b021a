"""The gateway's client to its replicas: keep-alive HTTP/1.1 over asyncio, parsed by httptools.

The gateway forwards every request, so this client is on every request's path twice (the
request out, the answer back). It does only what that needs: one POST at a time per connection,
idle connections kept per replica and reused, the answer parsed by httptools (the C parser
uvicorn itself uses) and handed back as the bytes that arrived.

Why not aiohttp (which the gateway used before) or httpx: measured at one client on 2 cores, with
the replica busy computing between requests, an aiohttp forwarder cost the gateway process 0.63 to
0.79 ms of CPU per request and this one 0.29 to 0.30 ms (``benchmarks/bench_serve.py`` section c
gives the end-to-end figures). A generic client pays per request for what a forwarder to a known
local server never uses: URL and cookie handling, tracing hooks, a task per request body,
decompression, header multidicts.

Errors: a connection that fails, is refused, closes before the answer or sends something that
does not parse raises :class:`ForwardError` (the gateway then retries on another replica); a
kept-alive connection that the server closed while idle is retried once on a new connection
first, since the request never reached the model. A timeout raises :class:`TimeoutError`.

Examples
--------
>>> import asyncio
>>> async def demo():
...     async def handle(reader, writer):
...         await reader.readuntil(b"\\r\\n\\r\\n")
...         await reader.readexactly(2)
...         writer.write(b"HTTP/1.1 200 OK\\r\\ncontent-length: 5\\r\\nx-a: 1\\r\\n\\r\\nhello")
...     server = await asyncio.start_server(handle, "127.0.0.1", 0)
...     up = Upstream("127.0.0.1", server.sockets[0].getsockname()[1])
...     answer = await up.post(b"/invocations", b"{}", [(b"content-type", b"application/json")],
...                            timeout=5)
...     up.close()
...     server.close()
...     return answer
>>> asyncio.run(demo())
(200, [(b'content-length', b'5'), (b'x-a', b'1')], b'hello')
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mlkit._imports import require

__all__ = ["Upstream", "ForwardError", "within"]

_timeout = getattr(asyncio, "timeout", None)  # Python 3.11+: one timer, no extra task
#: Idle connections older than this are closed, not reused: uvicorn closes them after 5 s.
IDLE_S = 4.0


async def within(awaitable: Any, seconds: float) -> Any:
    """``await awaitable``, raising TimeoutError after ``seconds``.

    asyncio.timeout (3.11+) arms one timer; wait_for (3.10) wraps the awaitable in a second task,
    which every request on the gateway's path would pay for.
    """
    if _timeout is not None:
        async with _timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


def _parser_error() -> type[Exception]:
    return require("httptools").HttpParserError


class ForwardError(ConnectionError):
    """The replica could not be reached or did not answer with a complete HTTP response."""


class _Conn(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        httptools = require("httptools")

        self.transport: Any = None
        self.parser = httptools.HttpResponseParser(self)
        self.future: asyncio.Future | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.got_bytes = False
        self.closed = False
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except _parser_error() as exc:
            self._fail(ForwardError(f"the replica's answer did not parse: {exc}"))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ForwardError(f"the replica closed the connection ({exc or 'EOF'})"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        future, self.future = self.future, None
        answer = (self.parser.get_status_code(), self.headers, b"".join(self.body))
        if not self.parser.should_keep_alive():
            self.closed = True
            self.transport.close()
        if future is not None and not future.done():
            future.set_result(answer)

    def _fail(self, exc: Exception) -> None:
        future, self.future = self.future, None
        if future is not None and not future.done():
            future.set_exception(exc)

    def start(self, request: bytes) -> asyncio.Future:
        self.headers, self.body, self.got_bytes = [], [], False
        self.future = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.future


class Upstream:
    """Keep-alive connections to one replica at ``host:port``."""

    def __init__(self, host: str, port: int, url: str = "") -> None:
        self.host, self.port = host, int(port)
        self.url = url or f"http://{host}:{port}"
        self._host_header = f"{host}:{port}".encode()
        self._idle: list[_Conn] = []

    @classmethod
    def from_url(cls, url: str) -> Upstream:
        """The upstream for a replica URL such as ``http://127.0.0.1:8123``."""
        from urllib.parse import urlsplit

        where = urlsplit(url)
        return cls(where.hostname or "127.0.0.1", where.port or 80, url)

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Conn, self.host, self.port)
        except OSError as exc:
            raise ForwardError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return conn

    def _take_idle(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and not conn.transport.is_closing() and \
                    now - conn.idle_since < IDLE_S:
                return conn
            conn.transport.close()
        return None

    async def post(self, path: bytes, body: bytes, headers: list[tuple[bytes, bytes]],
                   timeout: float) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """POST ``body`` to ``path``; returns (status, raw header pairs, body)."""
        return await self.request(b"POST", path, body, headers, timeout)

    async def get(self, path: bytes, headers: list[tuple[bytes, bytes]],
                  timeout: float) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """GET ``path`` (the health checks' ``/ping``); returns (status, header pairs, body)."""
        return await self.request(b"GET", path, b"", headers, timeout)

    async def request(self, method: bytes, path: bytes, body: bytes,
                      headers: list[tuple[bytes, bytes]],
                      timeout: float) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        head = [method, b" ", path, b" HTTP/1.1\r\nhost: ", self._host_header,
                b"\r\ncontent-length: ", str(len(body)).encode(), b"\r\n"]
        for k, v in headers:
            head += [k, b": ", v, b"\r\n"]
        head += [b"\r\n", body]
        return await within(self._exchange(b"".join(head)), timeout)

    async def _exchange(self, request: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        conn = self._take_idle()
        reused = conn is not None
        if conn is None:
            conn = await self._connect()
        try:
            answer = await conn.start(request)
        except ForwardError:
            if not (reused and not conn.got_bytes):
                raise
            # closed by the server while it sat idle: the request never reached the model
            conn = await self._connect()
            try:
                answer = await conn.start(request)
            except BaseException:
                conn.transport.close()
                raise
        except BaseException:  # a timeout or a cancel midway: this connection is unusable
            conn.transport.close()
            raise
        if not conn.closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        return answer

    def close(self) -> None:
        """Close every idle connection (those in use close when their request ends)."""
        for conn in self._idle:
            conn.transport.close()
        self._idle.clear()
