"""`rtcgate interop`: the interop matrix — real WebRTC clients against a server, cell by cell.

Exit status (`EXIT_STATUS`): 0 when every cell each client supports is green, 1 when one is not,
2 on a setup error (a requested client is not installed, a server does not start or cannot be
reached, bad arguments).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from toolkit.commands.arguments import did_you_mean

EXIT_STATUS = {
    0: "every cell each client supports is green (or failed as expected)",
    1: "a cell is not",
    2: "a setup error: bad arguments, a client not installed (scripts/install-clients.sh installs them), "
       "a server that does not start or cannot be reached",
}

def _clients(text: str) -> list[str]:
    from toolkit.interop.drivers import DRIVERS

    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in DRIVERS]
    if unknown or not names:
        hint = did_you_mean(unknown[0], DRIVERS) if unknown else ""
        raise argparse.ArgumentTypeError(f"unknown client(s) {', '.join(unknown) or '(none given)'}{hint} "
                                         f"(known: {', '.join(DRIVERS)})")
    return names


def read_expected(path: Path) -> dict[tuple[str, str], str]:
    """Expected failures: one `CLIENT CELL  # why` per line (blank lines and #-comments skipped)."""
    from toolkit.interop.judge import CELL_NAMES

    expected = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        body, _, reason = line.partition("#")
        if not body.strip():
            continue
        parts = body.split()
        if len(parts) != 2 or parts[1] not in CELL_NAMES:
            raise ValueError(f"{path}:{number}: expected 'CLIENT CELL  # why' with CELL one of {', '.join(CELL_NAMES)}")
        expected[(parts[0], parts[1])] = reason.strip() or "listed in " + path.name
    return expected


def register(commands) -> None:
    from toolkit.interop.drivers import DRIVERS

    interop = commands.add_parser(
        "interop", help="run the interop matrix: real WebRTC clients against a server",
        description="Drive real WebRTC clients (" + ", ".join(DRIVERS) + ") against a WHIP server and judge ICE, "
                    "DTLS (cipher, SRTP profile), audio both ways, data channels, a voice turn, ICE restart and "
                    "setup timings. Writes interop.json, interop.md and interop.html.")
    interop.add_argument("--clients", type=_clients, default=list(DRIVERS), metavar="NAMES",
                         help="comma-separated clients")
    interop.add_argument("--report-dir", type=Path, default=Path("reports"), metavar="DIR",
                         help="where the reports go; per-client logs and the capture go to DIR/interop/")
    interop.add_argument("--whip", metavar="URL",
                         help="an echo-mode WHIP server to test (default: start the reference server)")
    interop.add_argument("--voice-whip", metavar="URL",
                         help="a voice-mode WHIP server for the voice turn (with --whip; without it the voice "
                              "column is skipped)")
    interop.add_argument("--host-address", metavar="ADDR",
                         help="this machine's non-loopback address, for Firefox "
                              "(default: the first global IPv4 address)")
    interop.add_argument("--xfail", type=Path, metavar="FILE",
                         help="expected failures: one 'CLIENT CELL  # why' per line")
    interop.set_defaults(handler=run)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from toolkit.interop.matrix import MatrixSetupError, run_matrix
    from toolkit.interop.report import write_reports

    if args.voice_whip and not args.whip:
        parser.error("--voice-whip goes with --whip")
    try:
        expected = read_expected(args.xfail) if args.xfail else {}
    except (OSError, ValueError) as exc:
        print(f"rtcgate interop: {exc}", file=sys.stderr)
        return 2

    progress = MatrixProgress()
    try:
        result = asyncio.run(run_matrix(args.clients, report_dir=args.report_dir, whip=args.whip,
                                        voice_whip=args.voice_whip, host=args.host_address, expected=expected,
                                        progress=progress))
    except MatrixSetupError as exc:
        progress.close()
        print(f"rtcgate interop: {exc}", file=sys.stderr)
        return 2
    progress.close()
    paths = write_reports(result, args.report_dir)
    from toolkit import console as terminal

    console = terminal.stdout()
    console.print()
    print_summary(result, console)
    console.print("reports: " + ", ".join(str(path) for path in paths.values()))
    if result.missing:
        for client in result.missing:
            print(f"rtcgate interop: {client.name} is not installed: {client.missing}", file=sys.stderr)
        return 2
    return 0 if result.green else 1


class MatrixProgress:
    """The matrix's progress lines on stderr, as they come (all a log gets); on a terminal, also a
    spinner under them naming the client that is running."""

    def __init__(self, console=None) -> None:
        from toolkit import console as terminal

        self.console = console or terminal.stderr()
        self.spinner = self.console.status("starting…") if terminal.is_live(self.console) else None
        if self.spinner is not None:
            self.spinner.start()

    def __call__(self, line: str) -> None:
        self.console.print(line)
        if self.spinner is not None and line.startswith("["):
            self.spinner.update(line)

    def close(self) -> None:
        if self.spinner is not None:
            self.spinner.stop()
            self.spinner = None


def summary_table(result):
    """Clients × cells, each cell its status word: a rich Table."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from toolkit.console import STATUS_STYLES
    from toolkit.interop.judge import CELLS
    from toolkit.interop.report import BADGES

    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False, header_style="bold")
    for title in ("client", "version", *(title for _, title in CELLS)):
        table.add_column(title)
    for client in result.clients:
        cells = []
        for cell_id, _ in CELLS:
            cell = client.cells.get(cell_id)
            word = "not installed" if client.missing else BADGES[cell.status][0] if cell else "-"
            cells.append(Text(word, style=STATUS_STYLES.get(word, "dim")))
        table.add_row(client.title, client.version or "-", *cells)
    return table


def print_summary(result, console) -> None:
    """The matrix table, the evidence of every cell that did not pass, and the verdict."""
    from rich.text import Text

    from toolkit.console import STATUS_STYLES
    from toolkit.interop.judge import CELLS, PASS

    console.print(summary_table(result))
    titles = dict(CELLS)
    for client in result.clients:
        for cell_id, cell in client.cells.items():
            if cell.status != PASS:
                console.print(f"  {client.title}, {titles[cell_id]}: {cell.status}: {cell.evidence}")
    verdict = "every supported cell green" if result.green else "NOT all supported cells green"
    capture = "packet capture: yes" if result.capture else f"no packet capture ({result.capture_note})"
    line = Text(f"interop: {len(result.clients)} clients in {result.duration:.0f} s — ")
    line.append(verdict, style=STATUS_STYLES["green" if result.green else "NOT green"])
    line.append(f"; {capture}")
    console.print(line)
