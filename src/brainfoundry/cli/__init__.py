"""The `brainfoundry` command: thin Typer subcommands with lazy heavy imports.

Each subcommand lives in its own module and imports numpy/torch inside the function, so
`brainfoundry --help` stays fast. User mistakes (`BrainFoundryError`) print one line, exit 2.
"""

from __future__ import annotations

import sys

import typer

from .. import __version__
from ..errors import BrainFoundryError

app = typer.Typer(
    name="brainfoundry",
    help="Pretrain, adapt, evaluate and deploy foundation models for brain MRI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"brainfoundry {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Pretrain, adapt, evaluate and deploy foundation models for brain MRI."""


def _register() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}")  # each module registers its commands


# modules under cli/ that register commands on `app` when imported (they import only typer)
_COMMAND_MODULES: list[str] = [
    "prepare",
    "pretrain",
    "synth",
    "models",
    "finetune",
    "bench",
    "predict",
    "embed",
    "probe",
]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (user mistakes: one line on stderr, exit 2)."""
    _register()
    try:
        app(args=argv, standalone_mode=True)  # always ends in SystemExit
    except BrainFoundryError as e:
        typer.echo(f"error: {e}", err=True)
        return 2
    except FloatingPointError as e:  # the trainer's non-finite loss or gradient: not a crash
        typer.echo(f"error: training diverged: {e}", err=True)
        return 1
    except SystemExit as e:
        if e.code is None:
            return 0
        return e.code if isinstance(e.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
