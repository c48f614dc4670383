"""Crafters: scapy layers the toolkit owns or extends, to build right and deliberately wrong packets.

One rule everywhere (after scapy's `contrib/stun.py`): a field left None is computed at build
time (lengths, counts, checksums, MESSAGE-INTEGRITY, FINGERPRINT, CRC32c, padding); a field
given a value is written exactly as given, however wrong. Lists keep order and duplicates.
Build with `bytes(packet)`. Dissecting with these layers works (evidence, expectations), but it
is slow: a verdict on a hot path uses the independent verifiers (aioice, pyOpenSSL, pylibsrtp).

Modules (import the one you need; each documents its API):
- `stun`      STUN/ICE messages, every RFC 8489/8445 attribute, `ice_check(...)`.
- `dtls`      DTLS 1.2 records, handshake fragments, ClientHello with use_srtp, `client_hello_flight(...)`.
- `rtp`       RTP with RFC 8285 header extensions; RTCP SR/RR/SDES/BYE/APP/RTPFB/PSFB compounds.
- `sctp`      scapy's SCTP plus DCEP (RFC 8832) and data-channel builders.
- `srtp`      `SrtpContext.from_keys(profile, key, salt)`: SRTP/SRTCP through pylibsrtp.
- `mutators`  seeded substitute/xor/truncate/pad/split/duplicate/reorder, each with a description.
- `common`    `CraftError`, the one exception the crafters raise.
"""
