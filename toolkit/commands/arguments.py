"""How every `rtcgate` command and every benchmark in bench/ parses its arguments, so that an
option means the same wherever it appears.

The contract: a bad value is refused while parsing, never later, with one line on stderr that
names the option and says what is wrong with the value, and exit status 2 (`ArgumentParser`).
Numbers are finite (never nan or inf); a validator's name says which sign it takes and whether
zero is allowed. Addresses are IP literals, an IPv6 one in brackets before a port. `--help`
shows each option's real default value (`HelpFormatter`). Header values are secrets and never
appear in a message; neither does a secret file's content (it is read while parsing). An option
several commands take is declared here once (the reference server's session options,
--log-level, --secret-file), so it cannot drift between them.
"""
from __future__ import annotations

import argparse
import copy
import difflib
import ipaddress
import logging
import math
import re
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

# -- numbers ------------------------------------------------------------------------------------


def number(text: str) -> float:
    """Any finite number: float() alone takes 'nan' and 'inf', which no option means."""
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


def integer(text: str) -> int:
    """Any whole number, negative ones too (a seed)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def whole(text: str) -> int:
    """A whole number ≥ 1: a count of something that must happen at least once."""
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def non_negative_whole(text: str) -> int:
    """A whole number ≥ 0, where 0 means 'none' or 'off'."""
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number ≥ 0")
    return value


def whole_between(low: int, high: int) -> Callable[[str], int]:
    """A validator of whole numbers in low..high (both included)."""

    def bounded(text: str) -> int:
        value = integer(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {low}..{high}")
        return value

    bounded.__name__ = f"whole number in {low}..{high}"
    return bounded


# -- addresses ----------------------------------------------------------------------------------


def port(text: str) -> int:
    """A port to bind: 0..65535, 0 = any free port."""
    value = integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {text} is outside 0..65535")
    return value


def ip_address(text: str) -> str:
    """An IPv4 or IPv6 address, in its canonical spelling."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None


def address_and_ports(text: str, count: int) -> tuple[str, list[int]]:
    """`HOST:PORT` (or `HOST:PORT:PORT` for count=2, ...): HOST an IP address, an IPv6 one in
    brackets (a bare one could end in what looks like a port); each port 1..65535, a destination.
    Raises ValueError when it is not."""
    host, *ports = text.rsplit(":", count)
    if len(ports) != count:
        raise ValueError(text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ipaddress.ip_address(host).version != 6:
            raise ValueError(text)
    elif ":" in host:
        raise ValueError(text)
    if not all(value.isascii() and value.isdigit() for value in ports):
        raise ValueError(text)
    values = [int(value) for value in ports]
    if not all(0 < value < 65536 for value in values):
        raise ValueError(text)
    return str(ipaddress.ip_address(host)), values


def host_port(text: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPv6]:PORT`, HOST an IP address: where datagrams go."""
    try:
        host, (value,) = address_and_ports(text, 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (an IP address, IPv6 in brackets, "
                                         "and a port 1..65535)") from None
    return host, value


# -- HTTP headers -------------------------------------------------------------------------------

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


# -- the relay's routing secret -----------------------------------------------------------------

ROUTING_SECRET_MIN_BYTES = 16


def routing_secret_file(text: str) -> bytes:
    """The routing secret a relay and its workers share, read from the file `text` names: at
    least 32 hex digits (128 bits). The file's content never appears in a message."""
    try:
        content = Path(text).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        secret = bytes.fromhex(content)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} does not hold a hex string") from None
    if len(secret) < ROUTING_SECRET_MIN_BYTES:
        raise argparse.ArgumentTypeError(f"{text} holds {len(secret) * 8} bits of secret; the routing secret needs "
                                         f"at least {ROUTING_SECRET_MIN_BYTES * 8}")
    return secret


def add_routing_secret_option(parser: argparse.ArgumentParser) -> None:
    """--secret-file, the same for `rtcgate relay` and `rtcgate worker`; its value is `args.secret`."""
    parser.add_argument("--secret-file", type=routing_secret_file, required=True, dest="secret", metavar="FILE",
                        help="the routing secret shared by the relay and its workers, as hex "
                             "(at least 32 digits, e.g. from `openssl rand -hex 32`)")


# -- the reference server's options: `rtcgate serve` and `rtcgate worker` ------------------------

SERVER_SESSION_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--consent-timeout", dict(type=positive_number, default=30.0, metavar="S",
                               help="free a session after S seconds without an ICE check (RFC 7675)")),
    ("--connect-timeout", dict(type=positive_number, default=30.0, metavar="S",
                               help="free a session not DTLS-connected S seconds after signaling")),
    ("--stun-error-rate", dict(type=non_negative_number, default=100.0, metavar="N",
                               help="answer at most N unauthenticated STUN requests per second with an error "
                                    "(400, 401), in bursts of up to N; the rest get silence (drop reason "
                                    "stun_error_rate_limited; 0 = never)")),
    ("--certificate", dict(type=Path, help="PEM certificate (ECDSA P-256); default: generate one")),
    ("--private-key", dict(type=Path, help="PEM private key for --certificate")),
    ("--keylog", dict(type=Path, help="append DTLS secrets here in SSLKEYLOGFILE format")),
    ("--media", dict(choices=["voice", "echo"], default="voice",
                     help="voice: the realtime voice loop answers; echo: each session's audio and data-channel "
                          "messages come straight back")),
    ("--model", dict(metavar="MODULE:FACTORY",
                     help="the voice model (the embedded tone model needs nothing from outside)")),
    ("--vad", dict(choices=["webrtcvad", "silero"], default="webrtcvad",
                   help="voice activity detector (silero needs onnxruntime and its ONNX file)")),
)
"""How a reference server treats its sessions, declared once: `rtcgate serve` and `rtcgate worker`
take them alike, and `serve --workers N` hands them on to each worker as the same options. Each
option's dest is also the name of the ServerConfig field it sets."""


def _dest(option: str) -> str:
    return option[2:].replace("-", "_")


def add_server_session_options(parser: argparse.ArgumentParser, default_model: str) -> None:
    """SERVER_SESSION_OPTIONS; `default_model` is the server's own (this module imports no server)."""
    for option, settings in SERVER_SESSION_OPTIONS:
        model_default: dict[str, Any] = {"default": default_model} if option == "--model" else {}
        parser.add_argument(option, **settings, **model_default)


def server_session_settings(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The ServerConfig keyword arguments the session options give; a certificate needs its key."""
    if (args.certificate is None) != (args.private_key is None):
        parser.error("--certificate and --private-key go together")
    return {_dest(option): getattr(args, _dest(option)) for option, _ in SERVER_SESSION_OPTIONS}


def server_session_arguments(config: object) -> list[str]:
    """The session options that give `config` (a ServerConfig) its settings, as a command line."""
    arguments: list[str] = []
    for option, _ in SERVER_SESSION_OPTIONS:
        value = getattr(config, _dest(option))
        if value is not None:
            arguments += [option, str(value)]
    return arguments


def add_log_level_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="logging level")


def start_logging(level: str) -> None:
    """Log records at `level` and above to stderr, as every long-running command does."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# -- names --------------------------------------------------------------------------------------


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """'; did you mean X or Y?' for the known names close to `name`, or '' when none is."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""


# -- the parser ---------------------------------------------------------------------------------


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its real default value, unless it has none or its help says
    it already (with %(default)s, or in words). In descriptions and epilogs, indented lines are
    kept as written (examples, the exit-status table); the other lines are filled to the
    terminal's width. Lines break between words only: paths, URLs and option names stay whole."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or not _has_default(action):
            return text
        return f"{text} (default: %(default)s)"

    def _expand_help(self, action: argparse.Action) -> str:
        shown = copy.copy(action)
        if _has_default(action):
            shown.default = _shown(action)
        return super()._expand_help(shown)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            if line[:1].isspace():
                lines.append(indent + line)
            else:
                lines.append(textwrap.fill(" ".join(line.split()), width, initial_indent=indent, subsequent_indent=indent,
                                           break_on_hyphens=False, break_long_words=False))
        return "\n".join(lines)


def _has_default(action: argparse.Action) -> bool:
    """Whether the action has a value when the option is not given (a store_true's False is not one)."""
    default = action.default
    if default is None or default is argparse.SUPPRESS or default is False:
        return False
    return not (isinstance(default, (list, tuple)) and not default)


def _shown(action: argparse.Action) -> str:
    """The default as the user would type it: lists as the option takes them, floats without '.0'."""
    default = action.default

    def one(value: object) -> str:
        return f"{value:g}" if isinstance(value, float) else str(value)

    if isinstance(default, (list, tuple)):
        separator = "," if action.nargs is None else " "
        return separator.join(one(value) for value in default)
    return one(default)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with `HelpFormatter`, and errors as one line: `PROG: error: MESSAGE`,
    exit status 2 (no usage block: the message says what is wrong, `--help` the rest)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")
