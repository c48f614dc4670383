"""`rtcgate` when something goes wrong, as a user meets it: one line on stderr and a documented exit
status, never a traceback (unless asked for), never a whole HTML error page. Also --version."""
from __future__ import annotations

import ast
import asyncio
import importlib.metadata
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from toolkit import cli
from toolkit.interop.judge import error_line
from toolkit.peer import PeerError
from toolkit.peer.shell.whip import body_excerpt, whip_post, whip_reachable

ROOT = Path(__file__).resolve().parents[2]
NGINX_404 = ("<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1>"
             "</center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n")


def rtcgate(*args: str, timeout: float = 60.0, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolkit.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, **kwargs)


def closed_port() -> int:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def not_found_url():
    """A WHIP URL whose server answers every request with nginx's HTML 404 page."""

    class NotFound(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = NGINX_404.encode()
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_OPTIONS = do_DELETE = do_PATCH = _answer

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/whip"
    server.shutdown()
    server.server_close()
    thread.join(5)


# -- argument errors --------------------------------------------------------------------------


def test_a_bad_number_is_one_line_and_exit_2():
    done = rtcgate("check", "--silence", "nan")
    assert done.returncode == 2
    assert done.stderr == "rtcgate check: error: argument --silence: nan is not a finite number\n"


def test_an_unknown_check_id_is_named_with_close_ids(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["check", "--only", "NOPE-99", "--list"])
    assert raised.value.code == 2
    assert capsys.readouterr().err == ("rtcgate check: error: --only: no check NOPE-99 in the catalog "
                                       "(rtcgate check --list lists them)\n")
    with pytest.raises(SystemExit):
        cli.main(["check", "--only", "stun-1", "--list"])
    err = capsys.readouterr().err
    assert err.startswith("rtcgate check: error: --only: no check STUN-1 in the catalog; did you mean ")
    assert "STUN-01" in err and err.count("\n") == 1


def test_an_unknown_profile_suggests_the_close_one(capsys):
    with pytest.raises(SystemExit):
        cli.main(["check", "--profile", "secrity", "--list"])
    assert "unknown profile secrity; did you mean security?" in capsys.readouterr().err


# -- the top-level guard ------------------------------------------------------------------------


@pytest.fixture
def failing_check(monkeypatch):
    """`rtcgate check` whose run fails the way a toolkit bug would."""
    from toolkit.commands import check

    def broken(args, parser):
        raise RuntimeError("the toolkit broke\nacross two lines")

    monkeypatch.setattr(check, "run", broken)
    monkeypatch.delenv(cli.DEBUG_VARIABLE, raising=False)


def test_an_unexpected_error_is_one_line_and_exit_2(failing_check, capsys):
    assert cli.main(["check", "--list"]) == 2
    captured = capsys.readouterr()
    assert captured.err == ("rtcgate check: error: RuntimeError: the toolkit broke across two lines "
                            "(--debug or RTCGATE_DEBUG=1 shows the traceback)\n")


@pytest.mark.parametrize("how", ["--debug before the command", "--debug after it", "RTCGATE_DEBUG=1"])
def test_debug_adds_the_traceback(failing_check, capsys, monkeypatch, how):
    argv = {"--debug before the command": ["--debug", "check", "--list"],
            "--debug after it": ["check", "--list", "--debug"]}.get(how, ["check", "--list"])
    if how == "RTCGATE_DEBUG=1":
        monkeypatch.setenv(cli.DEBUG_VARIABLE, "1")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith("rtcgate check: error: RuntimeError: the toolkit broke across two lines\n")


def test_ctrl_c_exits_130_without_a_traceback(monkeypatch, capsys):
    from toolkit.commands import check

    def interrupted(args, parser):
        raise KeyboardInterrupt

    monkeypatch.setattr(check, "run", interrupted)
    assert cli.main(["check", "--list"]) == 130
    assert capsys.readouterr().err == "\nrtcgate check: interrupted\n"


def test_a_broken_pipe_that_is_not_the_output_is_an_error(monkeypatch, capsys):
    from toolkit.commands import check

    def broken(args, parser):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(check, "run", broken)
    assert cli.main(["check", "--list"]) == 2
    assert "rtcgate check: error: BrokenPipeError: [Errno 32] Broken pipe" in capsys.readouterr().err


def test_output_closed_early_exits_141_quietly():
    """`rtcgate check --list | head -1`: the reader is gone before rtcgate writes (here from the
    start, so the pipe breaks on every machine, however busy)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "toolkit.cli", "check", "--list"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60, cwd=ROOT)
    finally:
        os.close(write_end)
    assert done.returncode == cli.OUTPUT_CLOSED
    assert done.stderr == ""


# -- --version ----------------------------------------------------------------------------------


def test_version_comes_from_the_installed_package():
    done = rtcgate("--version")
    assert done.returncode == 0
    assert done.stdout == f"rtcgate {importlib.metadata.version('rtcgate')}\n"


def test_version_without_metadata_reads_the_checkouts_pyproject(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert cli.version() == f"rtcgate {version} (source checkout, not installed)"


# -- WHIP errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "excerpt"), [
    (NGINX_404, "404 Not Found"),
    ("<!DOCTYPE HTML>\n<html lang=\"en\">\n  <head>\n    <meta charset=\"utf-8\">\n"
     "    <title>Error response</title>\n", "Error response"),
    ("no such stream\nsecond line", "no such stream"),
    ("\n\n   \n", ""),
    ("x" * 300, "x" * 199 + "…"),
])
def test_body_excerpt_is_the_first_line_that_says_something(body, excerpt):
    assert body_excerpt(body) == excerpt


def test_a_whip_404_is_its_status_and_one_line_not_the_page(not_found_url):
    with pytest.raises(PeerError) as caught:
        asyncio.run(whip_post(not_found_url, "v=0\r\n", timeout=10))
    assert str(caught.value) == f"WHIP POST {not_found_url} answered 404 Not Found: 404 Not Found"
    assert caught.value.status == 404 and caught.value.body == NGINX_404


def test_check_against_a_whip_404_says_so_in_one_line(not_found_url, tmp_path):
    done = rtcgate("check", "--whip", not_found_url, "--only", "STUN-01", "--seed", "1", "--report-dir", str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "<" not in done.stderr and "nginx" not in done.stderr
    (reason,) = [line for line in done.stderr.splitlines() if "cannot be reached" in line]
    assert reason.endswith(f"WHIP POST {not_found_url} answered 404 Not Found: 404 Not Found")


def test_whip_reachable_takes_any_answer_and_refuses_silence(not_found_url):
    assert asyncio.run(whip_reachable(not_found_url)) == 404
    url = f"http://127.0.0.1:{closed_port()}/whip"
    with pytest.raises(PeerError, match=f"WHIP OPTIONS {url} failed: Cannot connect"):
        asyncio.run(whip_reachable(url))


# -- interop ------------------------------------------------------------------------------------


def test_interop_against_an_unreachable_server_exits_2_in_one_line(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/whip"
    done = rtcgate("interop", "--clients", "aiortc", "--whip", url, "--report-dir", str(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"rtcgate interop: the WHIP server {url} cannot be reached: ")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stdout + done.stderr


def test_interop_cells_show_a_whip_404_as_one_line(not_found_url, tmp_path):
    done = rtcgate("interop", "--clients", "aiortc", "--whip", not_found_url, "--report-dir", str(tmp_path),
                   timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    cells = json.loads((tmp_path / "interop.json").read_text())["clients"][0]["cells"]
    assert cells["ice"]["evidence"] == "ICE never connected: RuntimeError: WHIP POST answered 404: 404 Not Found"


def test_the_browser_and_node_clients_cut_a_whip_error_body_the_same_way():
    node = shutil.which("node")
    if node is None:
        message = "node is not installed; run scripts/install-clients.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    scenario = (ROOT / "toolkit" / "interop" / "js" / "scenario.mjs").as_uri()
    bodies = [NGINX_404, "no such stream\nsecond line", "\n \n", "x" * 300]
    script = (f"const {{bodyExcerpt}} = await import({json.dumps(scenario)});\n"
              f"console.log(JSON.stringify({json.dumps(bodies)}.map(bodyExcerpt)));")
    done = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [body_excerpt(body) for body in bodies]


def test_the_gstreamer_client_cuts_a_whip_error_body_the_same_way():
    """webrtcbin_client.py runs under the system Python without the toolkit, so it has its own
    body_excerpt; the script itself needs `gi`, so its function is compiled here on its own."""
    source = (ROOT / "toolkit" / "interop" / "gst" / "webrtcbin_client.py").read_text()
    (function,) = [node for node in ast.parse(source).body
                   if isinstance(node, ast.FunctionDef) and node.name == "body_excerpt"]
    namespace = {"re": re}
    exec(compile(ast.Module([function], type_ignores=[]), "webrtcbin_client.py", "exec"), namespace)
    for body in (NGINX_404, "no such stream\nsecond line", "\n \n", "x" * 300):
        assert namespace["body_excerpt"](body) == body_excerpt(body)


@pytest.mark.parametrize(("report", "line"), [
    ('Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n    raise RuntimeError(f"{x}")\n'
     "RuntimeError: WHIP POST answered 404: Not Found\n", "RuntimeError: WHIP POST answered 404: Not Found"),
    ("Error: WHIP POST answered 404: Not Found\n    at post (scenario.mjs:121:38)\n    at async connect",
     "Error: WHIP POST answered 404: Not Found"),
    ("TimeoutError: ICE connected: not within 15000 ms", "TimeoutError: ICE connected: not within 15000 ms"),
])
def test_a_clients_error_report_comes_down_to_the_line_that_says_what_failed(report, line):
    assert error_line(report) == line
