"""toolkit.commands.arguments, and every parser that uses it: each `rtcgate` command's and each
benchmark's. A number no option means (nan, inf, a wrong sign, zero where it must not be) is
refused while parsing, as one line and exit status 2; --help shows every default's real value and
ends with the command's exit statuses."""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import pkgutil
import sys

import pytest

import bench
from toolkit.cli import build_parser, main
from toolkit.commands import arguments
from toolkit.commands.relay import worker_endpoint

BENCH_HELPERS = {"common", "echo_client"}
"""The modules of bench/ that are no benchmark of their own."""
BENCHES = sorted(module.name for module in pkgutil.iter_modules(bench.__path__) if module.name not in BENCH_HELPERS)


@pytest.fixture(scope="module")
def bench_parsers() -> dict[str, argparse.ArgumentParser]:
    return {name: importlib.import_module(f"bench.{name}").build_parser() for name in BENCHES}


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    top = build_parser()
    (commands,) = [action for action in top._actions if isinstance(action, argparse._SubParsersAction)]
    return dict(commands.choices)


COMMANDS = command_parsers()


def kind(validator) -> str | None:
    """What a numeric validator refuses besides nan and inf: 'signed' nothing, 'non-negative'
    negatives, 'positive' zero too; None for a validator that is not a number's."""
    if validator in (arguments.number, arguments.integer):
        return "signed"
    if validator in (arguments.positive_number, arguments.whole):
        return "positive"
    if validator in (arguments.non_negative_number, arguments.non_negative_whole, arguments.port):
        return "non-negative"
    if getattr(validator, "__qualname__", "").startswith("whole_between"):
        return "non-negative"
    return None


def numeric_options(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    return [(action.option_strings[-1], kind(action.type)) for action in parser._actions
            if action.option_strings and kind(action.type)]


def refused(kind_: str) -> list[str]:
    values = ["nan", "inf", "-inf", "NaN", "1e999"]
    if kind_ != "signed":
        values.append("-1")
    if kind_ == "positive":
        values.append("0")
    return values


COMMAND_CASES = [(command, option, value) for command, parser in COMMANDS.items()
                 for option, kind_ in numeric_options(parser) for value in refused(kind_)]


@pytest.mark.parametrize(("command", "option", "value"), COMMAND_CASES)
def test_every_commands_numbers_refuse_nan_inf_and_wrong_signs(capsys, command, option, value):
    with pytest.raises(SystemExit) as raised:
        main([command, f"{option}={value}"])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"rtcgate {command}: error: argument {option}: "), err


def test_the_sweep_covers_what_users_hit():
    swept = {(command, option) for command, option, _ in COMMAND_CASES}
    assert {("check", "--silence"), ("check", "--consent-timeout"), ("check", "--perf-p99-ratio"),
            ("serve", "--consent-timeout"), ("serve", "--port"), ("worker", "--id"), ("relay", "--max-routes"),
            ("load", "--duration"), ("fuzz", "--time"), ("fuzz", "--jobs")} <= swept


def test_bench_sweep(bench_parsers, capsys):
    cases = 0
    for name, parser in bench_parsers.items():
        for option, kind_ in numeric_options(parser):
            for value in refused(kind_):
                with pytest.raises(SystemExit) as raised:
                    parser.parse_args([f"{option}={value}"])
                err = capsys.readouterr().err
                assert raised.value.code == 2, (name, option, value)
                assert err.count("\n") == 1 and f": error: argument {option}: " in err, (name, option, value, err)
                cases += 1
    assert cases > 100
    assert {option for option, _ in numeric_options(bench_parsers["srtp_echo"])} == {
        "--duration", "--warmup", "--window", "--sessions", "--rounds"}


def test_every_bench_has_a_parser_of_the_shared_kind(bench_parsers):
    assert len(bench_parsers) == 9
    for name, parser in bench_parsers.items():
        assert isinstance(parser, arguments.ArgumentParser), name
        assert parser.prog == f"python -m bench.{name}", "a bench runs as a module of the bench package"
        assert numeric_options(parser), f"{name} has no numeric option: is the sweep looking?"


def test_no_option_takes_a_bare_float_or_int(bench_parsers):
    """float() takes 'nan' and 'inf', int() any sign: every number goes through the shared validators."""
    parsers = {f"rtcgate {name}": parser for name, parser in COMMANDS.items()} | bench_parsers
    for name, parser in parsers.items():
        for action in parser._actions:
            assert action.type not in (float, int), f"{name} {action.option_strings}: type={action.type.__name__}"


def test_only_seeds_take_negative_numbers(bench_parsers):
    parsers = {f"rtcgate {name}": parser for name, parser in COMMANDS.items()} | bench_parsers
    signed = {(name, option) for name, parser in parsers.items()
              for option, kind_ in numeric_options(parser) if kind_ == "signed"}
    assert signed == {("rtcgate check", "--seed"), ("rtcgate load", "--seed"), ("rtcgate fuzz", "--seed"),
                      ("attack_latency", "--seed"), ("voice_latency", "--seed")}


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:5000", ("127.0.0.1", 5000)),
    ("[::1]:5000", ("::1", 5000)),
    ("[2001:DB8::1]:65535", ("2001:db8::1", 65535)),
])
def test_host_port_takes_ip_addresses_ipv6_in_brackets(text, expected):
    assert arguments.host_port(text) == expected


@pytest.mark.parametrize("text", ["::1:5000", "[127.0.0.1]:5", "localhost:5", "127.0.0.1:0", "127.0.0.1:65536",
                                  "127.0.0.1", "127.0.0.1:+5", "127.0.0.1:٥", ":5000", "[::1]5000", "1.2.3.4:nan"])
def test_host_port_refuses_anything_else(text):
    with pytest.raises(argparse.ArgumentTypeError, match="is not HOST:PORT"):
        arguments.host_port(text)


def test_worker_endpoints_share_the_address_rules():
    assert worker_endpoint("[::1]:5000:5001") == ("::1", 5000, 5001)
    for text in ("::1:5000:5001", "127.0.0.1:5000", "127.0.0.1:5000:0"):
        with pytest.raises(argparse.ArgumentTypeError, match="is not HOST:UDPPORT:HTTPPORT"):
            worker_endpoint(text)


@pytest.mark.parametrize(("validator", "text", "message"), [
    (arguments.number, "nan", "nan is not a finite number"),
    (arguments.positive_number, "0", "0 is not a positive number"),
    (arguments.non_negative_number, "-0.5", "-0.5 is not a number ≥ 0"),
    (arguments.whole, "2.5", "'2.5' is not a whole number"),
    (arguments.whole, "0", "0 is not a positive whole number"),
    (arguments.non_negative_whole, "-1", "-1 is not a whole number ≥ 0"),
    (arguments.port, "65536", "port 65536 is outside 0..65535"),
    (arguments.whole_between(0, 255), "256", "256 is outside 0..255"),
    (arguments.ip_address, "example.com", "'example.com' is not an IP address"),
])
def test_messages_say_what_is_wrong_with_the_value(validator, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        validator(text)
    assert str(caught.value) == message


def test_did_you_mean_names_close_names_only():
    assert arguments.did_you_mean("secrity", ["core", "security"]) == "; did you mean security?"
    assert arguments.did_you_mean("NOPE-99", ["STUN-01", "ICE-01"]) == ""


def option_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """One option's help as --help prints it, whitespace collapsed."""
    formatter = parser._get_formatter()
    formatter.add_argument(action)
    return " ".join(formatter.format_help().split())


def test_help_shows_every_default_as_its_value(bench_parsers):
    parsers = {f"rtcgate {name}": parser for name, parser in COMMANDS.items()} | bench_parsers
    shown = 0
    for name, parser in parsers.items():
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or not arguments._has_default(action):
                continue
            text = option_help(parser, action)
            value = arguments._shown(action)
            assert value in text, f"{name} {action.option_strings}: default {value!r} not in {text!r}"
            assert "(default: %" not in text
            shown += 1
    assert shown > 80


def test_check_help_shows_the_perf_thresholds_settings_defaults():
    from toolkit.commands.check import perf_options
    from toolkit.conformance.model import PerfThresholds

    check = COMMANDS["check"]
    text = " ".join(check.format_help().split())
    assert "Settings." not in text
    defaults = {field.name: field.default for field in dataclasses.fields(PerfThresholds)}
    for option in perf_options():
        (action,) = [a for a in check._actions if option.flag in a.option_strings]
        assert option_help(check, action).endswith(f"(default: {defaults[option.name]:g})")
    assert "--perf-sessions N legit sessions of the PERF load runs (default: 6)" in text
    assert "--silence S how long 'no answer' is waited for; raise it for distant targets (default: 0.5)" in text


def test_defaults_are_shown_as_typed():
    serve = " ".join(COMMANDS["serve"].format_help().split())
    assert "(default: 30)" in serve and "(default: 30.0)" not in serve
    interop = " ".join(COMMANDS["interop"].format_help().split())
    assert "(default: chromium,firefox,gstreamer,aiortc,werift,wrtc)" in interop


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_commands_help_ends_with_its_exit_statuses(command):
    module = sys.modules[f"toolkit.commands.{command}"]
    text = COMMANDS[command].format_help()
    table = text[text.index("\nexit status:\n"):]
    codes = [int(line.split()[0]) for line in table.splitlines()[2:] if line.startswith("  ") and line.split()[0].isdigit()]
    assert codes == sorted({*module.EXIT_STATUS, 2, 130, 141})
    assert "unexpected rtcgate error" in " ".join(table.split())


@pytest.mark.parametrize("content, message", [
    (None, "cannot read {path}: No such file or directory"),
    ("not hex at all", "{path} does not hold a hex string"),
    ("ab" * 8, "{path} holds 64 bits of secret; the routing secret needs at least 128"),
])
@pytest.mark.parametrize("command", ["relay", "worker"])
def test_a_bad_secret_file_is_refused_while_parsing_without_showing_it(tmp_path, capsys, command, content, message):
    path = tmp_path / "secret"
    if content is not None:
        path.write_text(content)
    required = {"relay": ["--worker", "127.0.0.1:5000:5001"],
                "worker": ["--id", "0", "--relay", "127.0.0.1:1", "--public", "127.0.0.1:1"]}[command]
    with pytest.raises(SystemExit) as exit_:
        COMMANDS[command].parse_args([*required, "--secret-file", str(path)])
    error = capsys.readouterr().err
    assert exit_.value.code == 2 and error.count("\n") == 1
    assert f"argument --secret-file: {message.format(path=path)}" in error
    assert content is None or content not in error


def test_the_secret_file_gives_the_secret(tmp_path):
    secret = bytes(range(32))
    (tmp_path / "secret").write_text(secret.hex() + "\n")
    assert arguments.routing_secret_file(str(tmp_path / "secret")) == secret


def test_serve_and_worker_take_the_same_session_options():
    """Declared once (arguments.SERVER_SESSION_OPTIONS): the same type, default and help in both."""
    def session_actions(parser: argparse.ArgumentParser) -> dict[str, tuple]:
        options = {option for option, _ in arguments.SERVER_SESSION_OPTIONS} | {"--log-level"}
        return {action.option_strings[0]: (action.type, action.default, action.choices, action.help)
                for action in parser._actions if action.option_strings and action.option_strings[0] in options}

    serve, worker = session_actions(COMMANDS["serve"]), session_actions(COMMANDS["worker"])
    assert len(serve) == len(arguments.SERVER_SESSION_OPTIONS) + 1
    assert serve == worker
