"""bench: a harness that measures which training-acceleration strategies still matter."""

import atexit
import gc


def skip_final_collection_at_exit() -> None:
    """Let this process exit without the garbage collector walking its whole heap: at exit, everything is
    frozen (gc.freeze), so the interpreter's last collections skip it. Those passes took about 1.7 s of a
    single `bench` run on 2 cores, 2.3 to 2.5 s with matplotlib and pandas loaded too (2026-11-30). The memory is the
    operating system's a moment later; results, logs and trackers are written and closed explicitly
    before, never left to a finalizer. Safe to call more than once."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
