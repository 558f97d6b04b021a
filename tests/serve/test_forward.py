"""The gateway's keep-alive client to its replicas (mlkit.serve._forward), against real sockets:
reuse, a connection the server closed while idle, answers that end early or do not parse, and
timeouts. The gateway tests exercise it against real replicas."""

from __future__ import annotations

import asyncio

import pytest

from mlkit.serve._forward import ForwardError, Upstream

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}"


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return head + await reader.readexactly(length)


async def _requests(reader: asyncio.StreamReader):
    """Each request on one connection, until the client closes it."""
    while True:
        try:
            yield await _read_request(reader)
        except asyncio.IncompleteReadError:
            return


def _serve(handler):
    """Start ``handler(reader, writer, connection_number)``; returns (server, upstream, seen)."""
    seen: dict[str, int] = {"connections": 0, "requests": 0}

    async def handle(reader, writer):
        seen["connections"] += 1
        await handler(reader, writer, seen)

    async def start():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return server, Upstream("127.0.0.1", server.sockets[0].getsockname()[1]), seen

    return start()


def test_one_connection_is_kept_alive_for_many_requests():
    async def main():
        async def handler(reader, writer, seen):
            async for request in _requests(reader):
                seen["requests"] += 1
                assert request.startswith(b"POST /invocations HTTP/1.1\r\n")
                assert b"\r\nx-request-id: r1\r\n" in request and request.endswith(b'{"a": 1}')
                writer.write(OK)

        server, up, seen = await _serve(handler)
        answers = [await up.post(b"/invocations", b'{"a": 1}', [(b"x-request-id", b"r1")], 5)
                   for _ in range(5)]
        up.close()
        server.close()
        return answers, seen

    answers, seen = asyncio.run(main())
    assert answers == [(200, [(b"content-length", b"2"), (b"content-type", b"application/json")],
                        b"{}")] * 5
    assert seen == {"connections": 1, "requests": 5}


def test_a_kept_alive_connection_closed_as_the_request_went_out_is_retried_on_a_new_one():
    # uvicorn ends idle keep-alive connections; one may close just as the gateway reuses it.
    # The request never reached the model: it goes again on a new connection, and the replica
    # is not reported as failed (which would take it out of rotation).
    async def main():
        async def handler(reader, writer, seen):
            await _read_request(reader)
            seen["requests"] += 1
            writer.write(OK)
            await writer.drain()
            if seen["connections"] == 1:
                await _read_request(reader)
                seen["requests"] += 1
                writer.close()  # closed with the second request unanswered
                return
            await reader.read()

        server, up, seen = await _serve(handler)
        first = await up.post(b"/invocations", b"{}", [], 5)
        second = await up.post(b"/invocations", b"{}", [], 5)
        up.close()
        server.close()
        return first, second, seen

    first, second, seen = asyncio.run(main())
    assert first[0] == second[0] == 200
    assert seen == {"connections": 2, "requests": 3}


def test_an_answer_cut_short_or_garbled_is_a_forward_error():
    async def main():
        async def handler(reader, writer, seen):
            await _read_request(reader)
            seen["requests"] += 1
            if seen["connections"] == 1:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort")
            else:
                writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            await writer.drain()
            writer.close()

        server, up, _ = await _serve(handler)
        errors = []
        for _ in range(2):
            with pytest.raises(ForwardError) as info:
                await up.post(b"/invocations", b"{}", [], 5)
            errors.append(str(info.value))
        up.close()
        server.close()
        return errors

    cut, garbled = asyncio.run(main())
    assert "closed the connection" in cut
    assert "did not parse" in garbled


def test_nobody_listening_is_a_forward_error_naming_the_address():
    async def main():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(ForwardError, match=f"cannot connect to 127.0.0.1:{port}"):
            await Upstream("127.0.0.1", port).post(b"/invocations", b"{}", [], 5)

    asyncio.run(main())


def test_a_silent_replica_times_out_and_its_connection_is_not_reused():
    async def main():
        async def handler(reader, writer, seen):
            await _read_request(reader)
            seen["requests"] += 1
            if seen["connections"] == 1:
                await asyncio.sleep(30)  # never answers in time
            writer.write(OK)

        server, up, seen = await _serve(handler)
        with pytest.raises((asyncio.TimeoutError, TimeoutError)):
            await up.post(b"/invocations", b"{}", [], 0.2)
        answer = await up.post(b"/invocations", b"{}", [], 5)
        up.close()
        server.close()
        return answer, seen

    answer, seen = asyncio.run(main())
    assert answer[0] == 200
    assert seen["connections"] == 2  # the timed-out connection was dropped, not reused


def test_health_check_gets_share_the_connection_with_posts():
    async def main():
        async def handler(reader, writer, seen):
            async for request in _requests(reader):
                seen["requests"] += 1
                seen.setdefault("lines", []).append(request.split(b"\r\n", 1)[0])
                if request.startswith(b"GET /ping"):
                    assert b"\r\nx-token: t\r\n" in request  # a cluster pool's secret
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n\n")
                else:
                    writer.write(OK)

        server, up, seen = await _serve(handler)
        ping = await up.get(b"/ping", [(b"x-token", b"t")], 5)
        post = await up.post(b"/invocations", b"{}", [], 5)
        ping2 = await up.get(b"/ping", [(b"x-token", b"t")], 5)
        up.close()
        server.close()
        return ping, post, ping2, seen

    ping, post, ping2, seen = asyncio.run(main())
    assert ping[0] == ping2[0] == post[0] == 200 and ping[2] == b"\n"
    assert seen["lines"] == [b"GET /ping HTTP/1.1", b"POST /invocations HTTP/1.1",
                             b"GET /ping HTTP/1.1"]
    assert seen["connections"] == 1
