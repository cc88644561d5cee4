"""`listen_socket`: the one way our servers bind, on real loopback sockets."""

from __future__ import annotations

import asyncio
import socket

import pytest

from harness.protocol import ListenError, listen_socket


def test_port_0_gives_a_listening_socket_that_accepts() -> None:
    with listen_socket("127.0.0.1", 0) as sock:
        port = sock.getsockname()[1]
        assert port > 0
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # the handshake completes: it listens before anyone is told the port


def test_reuse_address_is_set_and_reuse_port_is_not() -> None:
    with listen_socket("127.0.0.1", 0) as sock:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0


def test_a_port_in_use_is_one_line_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenError) as caught:
            listen_socket("127.0.0.1", port)
    assert str(caught.value) == f"cannot listen on 127.0.0.1:{port}: the address is already in use"
    assert isinstance(caught.value, OSError) and caught.value.port == port


def test_a_second_server_cannot_share_a_listening_port() -> None:
    with listen_socket("127.0.0.1", 0) as first, pytest.raises(ListenError, match="already in use"):
        listen_socket("127.0.0.1", first.getsockname()[1])


def test_the_port_is_free_again_at_once_after_a_server_closes_with_a_client_connected() -> None:
    server = listen_socket("127.0.0.1", 0)
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    server.setblocking(True)
    accepted, _ = server.accept()
    accepted.close()  # the server closes first: its side of the connection lingers (FIN_WAIT/TIME_WAIT)
    server.close()
    try:
        with listen_socket("127.0.0.1", port) as again:
            assert again.getsockname()[1] == port
    finally:
        client.close()


def test_ipv6_loopback_is_bound_in_brackets() -> None:
    with listen_socket("::1", 0) as sock:
        assert sock.family == socket.AF_INET6
        port = sock.getsockname()[1]
        with pytest.raises(ListenError, match=rf"^cannot listen on \[::1\]:{port}: the address is already in use$"):
            listen_socket("::1", port)


@pytest.mark.parametrize(
    ("host", "port", "reason"),
    [
        ("192.0.2.1", 0, "the address is not one of this machine's"),  # TEST-NET-1: never this machine's
        ("127.0.0.1", 70000, "the port is not between 0 and 65535"),
        ("127.0.0.1", -1, "the port is not between 0 and 65535"),
    ],
    ids=["not-ours", "too-large", "negative"],
)
def test_other_failures_say_why(host: str, port: int, reason: str) -> None:
    with pytest.raises(ListenError) as caught:
        listen_socket(host, port)
    assert str(caught.value) == f"cannot listen on {host}:{port}: {reason}"


def test_connections_asyncio_accepts_have_nagle_off() -> None:
    """asyncio turns Nagle off only on sockets that say IPPROTO_TCP; with it on, small SSE chunks wait 40 ms."""

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        sock = listen_socket("127.0.0.1", 0)
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
            try:
                return await asyncio.wait_for(seen, 5)
            finally:
                writer.close()

    assert asyncio.run(accepted_nodelay()) != 0
