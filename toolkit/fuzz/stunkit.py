"""Just enough STUN for the fuzz harnesses, independent of the server's codec.

Two jobs: re-sign a fuzzed message (USERNAME, MESSAGE-INTEGRITY, FINGERPRINT) so fuzzing
reaches past authentication, and judge whether a datagram was an authentic check for a
session, so the harness can tell when the server bound an address it should not have.
"""
from __future__ import annotations

import hmac
import struct
import zlib

USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
FINGERPRINT = 0x8028
_COOKIE = b"\x21\x12\xa4\x42"
_FINGERPRINT_XOR = 0x5354554E


def attributes(data: bytes) -> list[tuple[int, int, int]] | None:
    """(type, value offset, value length) of each attribute, or None if the framing is off."""
    if len(data) < 20 or data[4:8] != _COOKIE or int.from_bytes(data[2:4], "big") != len(data) - 20:
        return None
    found, offset = [], 20
    while offset < len(data):
        if offset + 4 > len(data):
            return None
        kind, length = struct.unpack_from("!HH", data, offset)
        if offset + 4 + length > len(data):
            return None
        found.append((kind, offset + 4, length))
        offset += 4 + length + (-length & 3)
    return found


def rebuild(data: bytes, values: list[tuple[int, bytes]]) -> bytes:
    """Same header (length fixed up), given attributes, zero padding."""
    body = b"".join(struct.pack("!HH", kind, len(value)) + value + bytes(-len(value) & 3) for kind, value in values)
    return data[:2] + len(body).to_bytes(2, "big") + data[4:20] + body


def with_username(data: bytes, username: bytes) -> bytes:
    """Replace the first USERNAME (or add one first); unparseable input comes back unchanged."""
    found = attributes(data)
    if found is None:
        return data
    values = [(kind, data[start:start + length]) for kind, start, length in found]
    for index, (kind, _) in enumerate(values):
        if kind == USERNAME:
            values[index] = (USERNAME, username)
            break
    else:
        values.insert(0, (USERNAME, username))
    return rebuild(data, values)


def with_integrity(data: bytes, key: bytes) -> bytes:
    """Recompute the first MESSAGE-INTEGRITY (RFC 8489 §14.5) if there is one."""
    for kind, start, length in attributes(data) or ():
        if kind == MESSAGE_INTEGRITY and length == 20:
            # The length field as if the message ended with this attribute: start + 20 - 20.
            covered = data[:2] + start.to_bytes(2, "big") + data[4:start - 4]
            mac = hmac.digest(key, covered, "sha1")
            return data[:start] + mac + data[start + 20:]
    return data


def with_fingerprint(data: bytes) -> bytes:
    """Recompute FINGERPRINT if it is the last attribute."""
    found = attributes(data)
    if found and found[-1][0] == FINGERPRINT and found[-1][2] == 4:
        start = found[-1][1]
        crc = zlib.crc32(data[:start - 4]) ^ _FINGERPRINT_XOR
        return data[:start] + crc.to_bytes(4, "big")
    return data


def authenticated_ufrag(data: bytes, passwords: dict[str, str]) -> str | None:
    """The ufrag (a key of `passwords`, ufrag -> pwd) this datagram is an authentic check for:
    a Binding request with USERNAME "<ufrag>[:...]", a valid MESSAGE-INTEGRITY under that
    ufrag's password and a valid FINGERPRINT; the only thing allowed to bind an address."""
    if data[0:2] != b"\x00\x01":
        return None
    found = attributes(data)
    if not found:
        return None
    kind, start, length = found[-1]
    if kind != FINGERPRINT or length != 4:
        return None
    if int.from_bytes(data[start:start + 4], "big") != zlib.crc32(data[:start - 4]) ^ _FINGERPRINT_XOR:
        return None
    username = next((data[s:s + n] for k, s, n in found if k == USERNAME), None)
    if username is None:
        return None
    ufrag = username.split(b":", 1)[0].decode("utf-8", "replace")
    pwd = passwords.get(ufrag)
    if pwd is None:
        return None
    mi = next((s for k, s, n in found if k == MESSAGE_INTEGRITY and n == 20), None)
    if mi is None:
        return None
    covered = data[:2] + mi.to_bytes(2, "big") + data[4:mi - 4]
    return ufrag if hmac.compare_digest(hmac.digest(pwd.encode(), covered, "sha1"), data[mi:mi + 20]) else None
