"""Training subcommands of ``handmocap`` (same protocol as ``handmocap.core.commands``).

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; heavy
imports happen inside ``run`` so that ``handmocap --help`` stays fast.
"""

# Order shown in ``handmocap --help``, after the core commands.
COMMANDS = ("data", "train", "evaluate")
