"""Ctrl-C (SIGINT) and SIGTERM: a run stops at a safe point and says how to go on.

While a run trains (`StopSignals`), the first signal only asks it to stop: the step
in progress ends, a checkpoint is written, and the run ends with `RunInterrupted`
(exit code 130 for SIGINT, 143 for SIGTERM, as a shell reports a process killed by
them). A second signal stops at once (`SignalInterrupt`); the last checkpoint stays
whole, since checkpoints are written atomically. Outside a run, SIGTERM is made to
stop a command as Ctrl-C does (`sigterm_interrupts`), so its temporary files go and
it says so instead of vanishing. Before any of this, while the `nnscratch` command
imports its modules, Ctrl-C ends it quietly too (`quiet_ctrl_c_while_starting`).
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import signal
import sys
import threading
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalInterrupt(KeyboardInterrupt):
    """Raised in the main thread by a signal handler: `signum` asked to stop now."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class RunInterrupted(Exception):
    """A run that stopped on a signal: `message` says where and how to go on."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def resume_command(run_dir) -> str:
    """`nnscratch train --resume RUN_DIR`, the path quoted for a shell if it must be
    (a space in it), so that the command printed can be pasted."""
    return f"nnscratch train --resume {shlex.quote(str(run_dir))}"


def _raise_interrupt(signum, frame):
    raise SignalInterrupt(signum)


@contextmanager
def sigterm_interrupts():
    """Inside, SIGTERM raises SignalInterrupt as SIGINT raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class StopSignals:
    """`with StopSignals() as stop:` the first SIGINT or SIGTERM sets `stop.signum`
    (`requested()` turns true); the second raises SignalInterrupt at once. The
    handlers before are put back on leaving. Only in the main thread (elsewhere
    signals cannot be handled, and nothing changes)."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise SignalInterrupt(signum)
        self.signum = signum

    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)


def quiet_ctrl_c_while_starting() -> None:
    """In the `nnscratch` command (`nnscratch ...` or `python -m nnscratch ...`, not a
    program importing nnscratch), a Ctrl-C before `cli.main` runs, while the modules
    import (about half a second), ends it as one during a command does: "aborted" and
    exit status 130, instead of a traceback of the import under way. `cli.main` puts
    Python's handler back (`done_starting`)."""
    if _started_as_the_command() and (
        signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not ignored
    ):
        signal.signal(signal.SIGINT, _abort_start)


def done_starting() -> None:
    """Ctrl-C raises KeyboardInterrupt again (which `cli.main` reports)."""
    if signal.getsignal(signal.SIGINT) is _abort_start:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _abort_start(signum, frame):
    print("\naborted", file=sys.stderr, flush=True)  # below the ^C, as click does
    raise SystemExit(128 + signum)  # through the import, with no traceback


def _started_as_the_command() -> bool:
    """Whether this process is the `nnscratch` command, starting: its console script
    (nnscratch, nnscratch.exe, nnscratch-script.py) or `python -m nnscratch`, whose
    sys.argv[0] is "-m" while the package imports."""
    if not sys.argv:
        return False
    if sys.argv[0] == "-m":
        argv = getattr(sys, "orig_argv", [])  # the interpreter's own command line
        return any(a == "-m" and b == "nnscratch" for a, b in itertools.pairwise(argv))
    name = os.path.basename(sys.argv[0])
    return re.sub(r"(-script\.pyw?|\.exe)$", "", name) == "nnscratch"
