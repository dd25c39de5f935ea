"""The ``handmocap`` console command: a thin dispatcher over the command packages.

``handmocap.core.commands`` holds capture, preview, bake and the rest;
``handmocap.training.commands`` holds the training commands. The dispatcher is the one place
that knows both (it imports neither package's heavy modules: each command imports what it
needs inside ``run``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from handmocap.core import __version__
from handmocap.core.errors import HandmocapError

COMMAND_PACKAGES = ("handmocap.core.commands", "handmocap.training.commands")


def command_modules() -> list[str]:
    """Every subcommand's module, in the order ``handmocap --help`` shows them."""
    names = []
    for package in COMMAND_PACKAGES:
        commands = importlib.import_module(package).COMMANDS
        names += [f"{package}.{name}" for name in commands]
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handmocap",
        description="Hand motion capture from video: takes, hand models and Blender animation.",
    )
    parser.add_argument("--version", action="version", version=f"handmocap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module_name in command_modules():
        module = importlib.import_module(module_name)
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except HandmocapError as exc:
        print(f"handmocap {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"handmocap {args.command}: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The console script: ``main``, then a quick exit.

    Once a command has finished (its files closed, its output written), the interpreter's
    teardown of torch alone takes half a second and does nothing the command needs; the
    add-on and scripts run many short commands, so the process ends without it.
    """
    try:
        code = main()
    except SystemExit as exc:  # argparse: --help, --version, bad arguments
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
