"""The `nnscratch` command line: every click command (only this package imports
click), thin: it parses options and calls the packages.

    options.py   options several commands share (the settings of a run)
    commands.py  download, train, evaluate, info, export, report, predict, serve
    sweep.py     sweep

Every user error (bad argument, path or file) ends as one line on stderr and a non-zero
exit code, never a traceback (`main`).
"""

from __future__ import annotations

import io
import sys

import click

from ..errors import NnscratchError
from ..runs.signals import (
    RunInterrupted,
    SignalInterrupt,
    done_starting,
    sigterm_interrupts,
)
from .commands import cli
from .sweep import sweep

__all__ = ["cli", "main", "sweep"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 on success)."""
    done_starting()  # from here a Ctrl-C is reported below
    _escape_what_stdout_cannot_encode()
    try:
        with sigterm_interrupts():  # SIGTERM stops a command as Ctrl-C does
            result = cli.main(args=argv, prog_name="nnscratch", standalone_mode=False)
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.Abort as e:
        click.echo("aborted", err=True)
        signal = e.__cause__
        return signal.exit_code if isinstance(signal, SignalInterrupt) else 130
    except RunInterrupted as e:
        click.echo(str(e), err=True)
        return e.exit_code
    except NnscratchError as e:
        click.echo(f"error: {e}", err=True)
        return 1
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        click.echo(f"error: {where}{e.strerror or e}", err=True)
        return 1
    except MemoryError as e:  # e.g. --hidden 100000000: NumPy says how much it wanted
        click.echo(f"error: not enough memory ({e or 'MemoryError'})", err=True)
        return 1
    return result if isinstance(result, int) else 0


def _escape_what_stdout_cannot_encode() -> None:
    """A character stdout's encoding lacks (a file name's 五 in a log on Windows,
    cp1252) is printed as an escape, \\u4e94, as Python does on stderr, instead of
    ending the command with a UnicodeEncodeError after its work is done."""
    if isinstance(sys.stdout, io.TextIOWrapper) and sys.stdout.errors == "strict":
        sys.stdout.reconfigure(errors="backslashreplace")
