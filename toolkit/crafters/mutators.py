"""Mutators in the tlsfuzzer spirit: small, seeded, explainable changes to what a tester sends.

Every mutator is a pure function: input bytes (or a scapy packet, taken as bytes(packet)), or a
list of datagrams, plus a `random.Random`; output a `Mutation` — the resulting datagrams and a
one-line description for the evidence ("xor byte 3 with 0x40"). The same seed and input give
the same mutation. Anything the random choice would pick can be pinned with a keyword, which is
how a reported mutation is replayed exactly.

- `substitute_byte(data, rng, offset=, value=)`   one byte replaced by a different one
- `substitute_field(packet, rng, field=, value=)`  one scapy field (any layer) set to an edge or
                                                   random value, then rebuilt (lengths and
                                                   checksums still computed unless that field)
- `xor(data, rng, offset=, mask=)`                one byte XOR a non-zero mask
- `truncate(data, rng, length=)`                  cut to a shorter length
- `pad(data, rng, extra=, fill=)`                  bytes appended
- `split(data, rng, parts=, cuts=)`                one datagram into several
- `duplicate(datagrams, rng, index=, times=)`      one datagram sent again, right after itself
- `reorder(datagrams, rng, order=)`                datagrams sent in another order
- `mutate(data, rng)`                              one of the single-datagram mutators, at random
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from scapy.fields import AnyField, BitField, ConditionalField, MultipleTypeField, StrField
from scapy.packet import Packet

from toolkit.crafters.common import BuildOnlyField, CraftError


@dataclass(frozen=True, slots=True)
class Mutation:
    """What a mutator produced (`datagrams`, to send in order) and what it did (`description`)."""

    datagrams: tuple[bytes, ...]
    description: str

    @property
    def data(self) -> bytes:
        """The single datagram of a one-datagram mutation."""
        if len(self.datagrams) != 1:
            raise CraftError(f"this mutation produced {len(self.datagrams)} datagrams, not one")
        return self.datagrams[0]


def _bytes(data: bytes | Packet) -> bytes:
    return bytes(data)


def _need(data: bytes, what: str) -> None:
    if not data:
        raise CraftError(f"cannot {what} an empty datagram")


def substitute_byte(data: bytes | Packet, rng: random.Random, *, offset: int | None = None,
                    value: int | None = None) -> Mutation:
    raw = _bytes(data)
    _need(raw, "substitute a byte of")
    if offset is None:
        offset = rng.randrange(len(raw))
    if value is None:
        value = (raw[offset] + rng.randrange(1, 256)) % 256
    out = raw[:offset] + bytes([value]) + raw[offset + 1 :]
    return Mutation((out,), f"substitute byte {offset}: 0x{raw[offset]:02x} -> 0x{value:02x}")


def xor(data: bytes | Packet, rng: random.Random, *, offset: int | None = None, mask: int | None = None) -> Mutation:
    raw = _bytes(data)
    _need(raw, "xor")
    if offset is None:
        offset = rng.randrange(len(raw))
    if mask is None:
        mask = 1 << rng.randrange(8) if rng.random() < 0.5 else rng.randrange(1, 256)
    out = raw[:offset] + bytes([raw[offset] ^ mask]) + raw[offset + 1 :]
    return Mutation((out,), f"xor byte {offset} with 0x{mask:02x}")


def truncate(data: bytes | Packet, rng: random.Random, *, length: int | None = None) -> Mutation:
    raw = _bytes(data)
    _need(raw, "truncate")
    if length is None:
        length = rng.randrange(len(raw))
    return Mutation((raw[:length],), f"truncate {len(raw)} bytes to {length}")


def pad(data: bytes | Packet, rng: random.Random, *, extra: int | None = None, fill: bytes | None = None) -> Mutation:
    raw = _bytes(data)
    if fill is None:
        if extra is None:
            extra = rng.choice((1, 2, 3, 4, 8, 16, rng.randrange(1, 1200)))
        fill = bytes([0]) * extra if rng.random() < 0.5 else rng.randbytes(extra)
    return Mutation((raw + fill,), f"pad with {len(fill)} bytes {fill[:8].hex()}{'...' if len(fill) > 8 else ''}")


def split(data: bytes | Packet, rng: random.Random, *, parts: int | None = None,
          cuts: Sequence[int] | None = None) -> Mutation:
    """Cut one datagram into consecutive pieces at `cuts` (offsets), or at `parts - 1` random ones."""
    raw = _bytes(data)
    if len(raw) < 2:
        raise CraftError(f"cannot split a {len(raw)}-byte datagram")
    if cuts is None:
        if parts is None:
            parts = rng.randint(2, min(4, len(raw)))
        if not 2 <= parts <= len(raw):
            raise CraftError(f"cannot split {len(raw)} bytes into {parts} parts")
        cuts = sorted(rng.sample(range(1, len(raw)), parts - 1))
    bounds = [0, *cuts, len(raw)]
    pieces = tuple(raw[a:b] for a, b in zip(bounds, bounds[1:]))
    return Mutation(pieces, f"split {len(raw)} bytes at {', '.join(map(str, cuts))}")


def duplicate(datagrams: Sequence[bytes | Packet], rng: random.Random, *, index: int | None = None,
              times: int = 1) -> Mutation:
    items = [_bytes(d) for d in datagrams]
    if not items:
        raise CraftError("cannot duplicate from an empty list of datagrams")
    if index is None:
        index = rng.randrange(len(items))
    out = items[: index + 1] + [items[index]] * times + items[index + 1 :]
    return Mutation(tuple(out), f"duplicate datagram {index} ({len(items[index])} bytes) {times} time(s)")


def reorder(datagrams: Sequence[bytes | Packet], rng: random.Random, *, order: Sequence[int] | None = None) -> Mutation:
    """Send the datagrams in `order` (a permutation of indexes); random ones differ from the original."""
    items = [_bytes(d) for d in datagrams]
    if len(items) < 2:
        raise CraftError(f"cannot reorder {len(items)} datagram(s)")
    if order is None:
        order = list(range(len(items)))
        while order == sorted(order):
            rng.shuffle(order)
    if sorted(order) != list(range(len(items))):
        raise CraftError(f"order {list(order)} is not a permutation of {len(items)} datagrams")
    return Mutation(tuple(items[i] for i in order), f"reorder datagrams as {list(order)}")


def _leaf_fields(packet: Packet) -> list[tuple[Packet, AnyField]]:
    """(layer, field) for every number or byte-string field on the wire, in every layer,
    including packets nested in fields (STUN attributes, TLS extensions, report blocks)."""
    found: list[tuple[Packet, AnyField]] = []
    for layer in packet.iterpayloads():
        _walk(layer, found)
    return found


def _walk(layer: Packet, found: list[tuple[Packet, AnyField]]) -> None:
    for field in layer.fields_desc:
        if isinstance(field, ConditionalField):
            if not field._evalcond(layer):
                continue
            field = field.fld
        if isinstance(field, MultipleTypeField):
            field = field._find_fld_pkt(layer)
        if isinstance(field, BuildOnlyField):
            continue
        if getattr(field, "holds_packets", False):
            value = layer.getfieldval(field.name)
            for nested in value if isinstance(value, list) else [value]:
                if isinstance(nested, Packet):
                    for nested_layer in nested.iterpayloads():
                        _walk(nested_layer, found)
            continue
        if getattr(field, "islist", False):
            continue
        if _bit_size(field) is not None or isinstance(field, StrField):
            found.append((layer, field))


def _bit_size(field: AnyField) -> int | None:
    if isinstance(field, BitField):
        return field.size
    if isinstance(field, StrField) or not isinstance(field.fmt, str) or field.fmt[-1] not in "BbHhIiLlQq":
        return None
    return 8 * field.sz


def _edge_value(field: AnyField, current: Any, rng: random.Random) -> Any:
    bits = _bit_size(field)
    if bits is not None:
        top = (1 << bits) - 1
        candidates = [0, 1, top, top - 1, top >> 1, (top >> 1) + 1, rng.randrange(top + 1)]
        candidates = [c for c in candidates if 0 <= c <= top and c != current] or [top]
        return rng.choice(candidates)
    current_bytes = current if isinstance(current, bytes) else b""
    choice = rng.randrange(4)
    if choice == 0:
        return b""
    if choice == 1 and current_bytes:
        return current_bytes[: rng.randrange(len(current_bytes))]
    if choice == 2:
        return current_bytes + rng.randbytes(rng.choice((1, 3, 4, 255, 256)))
    return rng.randbytes(max(1, len(current_bytes)))


def substitute_field(packet: Packet, rng: random.Random, *, field: str | None = None, value: Any = None,
                     layer: int | None = None) -> Mutation:
    """Set one field of a scapy packet (any layer) to an edge or random value and rebuild.

    `field` names it (the first layer that has it, or layer number `layer`); otherwise one is
    drawn from every plain field of every layer. Numbers get 0, 1, max, max-1, mid or random;
    byte strings get empty, shortened, extended or random.
    """
    copy = packet.copy()
    choices = _leaf_fields(copy)
    if field is not None:
        choices = [(owner, f) for owner, f in choices if f.name == field]
        if layer is not None:
            layers = list(copy.iterpayloads())
            choices = [(owner, f) for owner, f in choices if owner is layers[layer]]
        if not choices:
            raise CraftError(f"{packet.summary()} has no field {field!r}")
    if not choices:
        raise CraftError(f"{packet.summary()} has no field to substitute")
    target_layer, target = choices[0] if field is not None else rng.choice(choices)
    current = target_layer.getfieldval(target.name)
    if value is None:
        value = _edge_value(target, current, rng)
    target_layer.setfieldval(target.name, value)
    shown = value.hex() if isinstance(value, bytes) else value
    return Mutation((bytes(copy),), f"set {target_layer.name}.{target.name} = {shown!r} (was {current!r})")


_SINGLE = (substitute_byte, xor, truncate, pad, split)


def mutate(data: bytes | Packet, rng: random.Random) -> Mutation:
    """One single-datagram mutator chosen by `rng` (substitute_field too when given a packet)."""
    choices: list[Callable[..., Mutation]] = list(_SINGLE)
    if isinstance(data, Packet):
        choices.append(substitute_field)
    if len(_bytes(data)) < 2:
        choices = [m for m in choices if m is not split]
    chosen = rng.choice(choices)
    return chosen(data, rng)

