"""The asyncio shell in-process: a dual-stack server on one UDP port number."""
from __future__ import annotations

import asyncio
import functools
import socket

import pytest

from reference_server import stun
from reference_server.shell.server import ReferenceServer, ServerConfig, ready_line
from tests.support.server_process import READY_LINE
from toolkit.conformance.targets import ipv6_loopback
from toolkit.peer import RtpReceived, StunResponse
from toolkit.peer.shell.udp import connect_whip

needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback")


def dual_stack(port: int = 0) -> ReferenceServer:
    return ReferenceServer(ServerConfig(host="127.0.0.1", extra_hosts=("::1",), port=port, http_port=0, media="echo"))


def with_dual_stack(test):
    """Run an async test with a started dual-stack server (stopped after it, however it ends)."""
    @functools.wraps(test)
    def run() -> None:
        async def scenario() -> None:
            server = dual_stack()
            await server.start()
            try:
                await test(server)
            finally:
                await server.stop()
        asyncio.run(scenario())
    del run.__wrapped__  # pytest would read the test's own signature, and look for a `server` fixture
    return run


async def mapped_address(connection, remote) -> tuple[int, str, int]:
    """(family byte, address, port) of XOR-MAPPED-ADDRESS in the answer to one more check."""
    request = connection.peer.binding_request(use_candidate=False)
    connection.send_raw(request, remote)
    while True:
        response = await connection.wait_for(StunResponse, 5.0)
        if response.transaction_id == request[8:20]:
            break
    value = stun.parse(response.raw).get(stun.XOR_MAPPED_ADDRESS)
    return (value[1], *stun.parse_xor_address(value, response.transaction_id))


@needs_ipv6
@with_dual_stack
async def test_dual_stack_answers_each_family_from_its_own_socket(server):
    port = server.udp_address[1]
    assert server.udp_addresses == [("127.0.0.1", port), ("::1", port)]
    whip_url = f"http://127.0.0.1:{server.http_address[1]}/whip"
    for local, family in (("::1", 2), ("127.0.0.1", 1)):
        connection = await connect_whip(whip_url, local_host=local, remote=(local, port))
        try:
            assert connection.peer.answer.candidates == [("127.0.0.1", port), ("::1", port)]
            assert await mapped_address(connection, (local, port)) == (family, *connection.local_addr)
            connection.send_rtp(b"\xf8\xff\xfe" + local.encode(), timestamp=960)
            echoed = await connection.wait_for(RtpReceived, 5.0)
            assert echoed.packet[12:] == b"\xf8\xff\xfe" + local.encode()
            assert echoed.addr[:2] == (local, port)
        finally:
            await connection.close()


@needs_ipv6
@with_dual_stack
async def test_ready_line_keeps_the_first_address_where_parsers_look(server):
    line = ready_line(server)
    port = server.udp_address[1]
    match = READY_LINE.search(line)
    assert (match["udp_host"], int(match["udp_port"])) == ("127.0.0.1", port)
    assert match["http"] == f"http://127.0.0.1:{server.http_address[1]}"
    assert f" udp6=[::1]:{port} " in line
    assert f"advertising 127.0.0.1:{port} and [::1]:{port};" in line


@needs_ipv6
def test_port_taken_on_the_second_address_is_a_clear_error():
    async def scenario():
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as squatter:
            squatter.bind(("::1", 0))
            port = squatter.getsockname()[1]
            with pytest.raises(OSError) as error:
                await dual_stack(port).start()
        assert str(error.value).startswith(f"cannot listen on UDP [::1]:{port} as well as 127.0.0.1:{port}: ")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:  # the first socket was closed
            again.bind(("127.0.0.1", port))

    asyncio.run(scenario())


@pytest.mark.parametrize("hosts, message", [
    (("127.0.0.1", "127.0.0.2"), "UDP host 127.0.0.2 is a second IPv4 address (after 127.0.0.1)"),
    (("::1", "127.0.0.1", "::"), "UDP host :: is a second IPv6 address (after ::1)"),
    (("127.0.0.1", "127.0.0.1"), "UDP host 127.0.0.1 is a second IPv4 address (after 127.0.0.1)"),
])
def test_one_address_per_family(hosts, message):
    with pytest.raises(ValueError) as error:
        ServerConfig(host=hosts[0], extra_hosts=hosts[1:])
    assert str(error.value) == message + "; listen on at most one IPv4 and one IPv6 address"
