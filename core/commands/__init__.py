"""Subcommands of the ``handmocap`` console command, one module each.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; heavy
imports happen inside ``run`` so that ``handmocap --help`` stays fast.
"""

# Order shown in ``handmocap --help``.
COMMANDS = (
    "demo",
    "capture",
    "preview",
    "bake",
    "detect",
    "models",
    "check",
    "info",
    "draw_model",
)
