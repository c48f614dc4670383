"""The probe peer's I/O: everything that needs a socket, an event loop or HTTP.

`udp` runs a ProbePeer on a real UDP socket (asyncio), `whip` is its WHIP client (aiohttp),
`datachannel` its SCTP/DCEP adapter (aiortc, on asyncio). They import the sans-IO peer in
`toolkit.peer`; nothing there imports them (tests/test_architecture.py holds that line).
"""
