"""Turning SIGTERM/SIGINT into a `threading.Event`, safely however many signals arrive.

A Python signal handler that calls `Event.set()` itself takes the Event's lock; a second signal
landing while the first handler holds it runs a nested handler on the same thread, which then
waits on that lock for ever (or, under a burst, recurses until RecursionError). A worker gets two
signals routinely: `serve` sends SIGTERM and its death signal (PR_SET_PDEATHSIG) sends another;
Ctrl-C reaches the whole process group. So the handler here does nothing in Python: the
interpreter's C handler writes the signal to a wakeup pipe, and a thread reading that pipe sets
the Event.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_on_signals(
    stop: threading.Event, signals: Iterable[signal.Signals] = STOP_SIGNALS
) -> None:
    """Set `stop` on the first of `signals`; later ones are drained and ignored. Main thread only
    (as for any `signal.signal`)."""
    wanted = frozenset(int(sig) for sig in signals)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    # The pipe first: a signal landing between the two would otherwise be handled and lost.
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    for sig in wanted:
        signal.signal(sig, _note_only)
    threading.Thread(
        target=_set_when_signalled,
        args=(read_end, wanted, stop),
        name="stop-signals",
        daemon=True,
    ).start()


def _note_only(signum: int, frame: object) -> None:
    """Installed so the signal does not kill the process; the wakeup pipe carries it."""


def _set_when_signalled(read_end: int, wanted: frozenset[int], stop: threading.Event) -> None:
    """The pipe carries one byte per signal with a Python handler: act on the wanted ones."""
    while True:
        if wanted.intersection(os.read(read_end, 512)):
            stop.set()
