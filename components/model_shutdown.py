"""A clean server stop: model threads end before Python finalizes (`stop_background_work`)."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time

# Set when the interpreter exits: warm-ups stop at the next step or token.
STOPPING = threading.Event()
EXIT_WAIT_SECONDS = 3.0


def stop_background_work(wait: float = EXIT_WAIT_SECONDS, exit_status: int = 1) -> None:
    """At interpreter exit (a server stop): end the model threads before Python finalizes.

    A loader thread is a daemon. Finalizing Python while it is inside TensorFlow makes the
    thread unwind through TensorFlow's C++ frames when it next asks for the interpreter
    lock, which aborts the process ("terminate called after throwing an instance of ...",
    "FATAL: exception not rethrown", status 134). So warm-ups are told to stop and get a
    few seconds to finish their current call; a thread still inside TensorFlow after that
    (a load or a long compile) only loads or compiles, so nothing is lost by leaving at
    once, skipping the finalization that would abort."""
    STOPPING.set()
    busy = [t for t in threading.enumerate() if t.name.startswith("load ") and t.is_alive()]
    deadline = time.monotonic() + wait
    for thread in busy:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in busy):
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(exit_status)


def exit_hook_first() -> None:
    """Exit handlers run last-registered first: run ours before those TensorFlow and Keras
    registered when they loaded, while they still work."""
    atexit.unregister(stop_background_work)
    atexit.register(stop_background_work)


atexit.register(stop_background_work)
