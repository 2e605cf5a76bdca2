"""The `mstpn` command line: one entry point, one subcommand per job.

Each subcommand's handler lives beside its parser here and calls the library; bad input raises
:class:`mstpn.errors.UserError`, which becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from mstpn.errors import UserError

EPILOG = """examples:
  mstpn device demo --out out/device          the six synaptic functions of one device, as a figure
  mstpn device simulate --protocol characterise --out trace.csv
  mstpn device fit trace.csv --out params.json --plot fit.png
"""


# ---------------------------------------------------------------------------------------- device
def _add_device(sub: argparse._SubParsersAction) -> None:
    device = sub.add_parser("device", help="simulate, characterise and fit a memristor",
                            description="Work with one memristor model: demo, simulate traces, fit data.")
    dsub = device.add_subparsers(dest="device_command", required=True, metavar="COMMAND")
    del dsub  # demo, simulate, fit: see issue 2


# ---------------------------------------------------------------------------------------- main
REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [_add_device]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mstpn", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Memristive short-term plasticity neuron networks: devices, cells, Pong, energy.",
        epilog=EPILOG)
    from mstpn import __version__  # noqa: PLC0415

    parser.add_argument("--version", action="version", version=f"mstpn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"mstpn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mstpn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
