"""Argument types the subcommands share: numbers with exact messages for what is wrong with them."""
from __future__ import annotations

import argparse
import math
import re


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def positive_number(text: str) -> float:
    value = number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def non_negative_number(text: str) -> float:
    value = number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number ≥ 0")
    return value


def whole(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""An HTTP field name (RFC 9110 §5.1: a token)."""


def http_header(text: str) -> tuple[str, str]:
    """`Name: value`, for --header. Header values are often secrets (a bearer token), so no
    message ever repeats one: only the name, or what is wrong."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not name:
        raise argparse.ArgumentTypeError("a header must be 'Name: value' (its value is not shown here)")
    if not _TOKEN.fullmatch(name):
        raise argparse.ArgumentTypeError(f"header name {name!r} is not an HTTP field name (RFC 9110 §5.1)")
    if not value:
        raise argparse.ArgumentTypeError(f"header {name} has an empty value")
    if any(ord(char) < 32 and char != "\t" or ord(char) == 127 for char in value):
        raise argparse.ArgumentTypeError(f"header {name}'s value holds a control character (a line break?)")
    return name, value
