"""Per-cell locks: while a process computes a cell it holds `cells/<id>/.lock` (its pid and host), so that two
sweeps, launchers or machines sharing a folder never compute one cell twice; a dead process's lock is taken over.
A lock appears whole: written under a temporary name and linked into place."""

from __future__ import annotations

import errno
import json
import os
import platform
import secrets
import time
from pathlib import Path

from bench import atomic
from bench.results import LOCK_NAME, cell_dir, check_cell_paths, warn

# A lock appears whole (written under a temporary name and linked into place), and bench before that
# wrote its few bytes within milliseconds of creating it: a lock that cannot be read and is older than
# this was left by no live writer.
UNREADABLE_LOCK_STALE_S = 30.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lock(path: Path) -> tuple[dict | None, float, int]:
    """(owner {pid, host} or None when unreadable, age in seconds, inode) of a lock file."""
    st = path.stat()
    try:
        owner = json.loads(path.read_bytes())
    except (OSError, ValueError):
        owner = None
    if not (isinstance(owner, dict) and isinstance(owner.get("pid"), int) and isinstance(owner.get("host"), str)):
        owner = None
    return owner, time.time() - st.st_mtime, st.st_ino


def _place_lock(path: Path) -> bool:
    """Create the lock, whole, with this process's pid and host: False if one exists."""
    tmp = path.with_name(f".lock.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    atomic.write_text(tmp, json.dumps({"pid": os.getpid(), "host": platform.node()}))
    try:
        os.link(tmp, path)  # atomic, and fails if the lock exists
        return True
    except FileExistsError:
        return False
    except OSError as e:  # a file system without hard links: create it exclusively instead
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
            raise
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(tmp.read_text())
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _stale(path: Path, owner: dict | None, age: float) -> str | None:
    """Why a lock is stale (its owner cannot be computing the cell), or None while it may be."""
    if owner is None:
        if age > UNREADABLE_LOCK_STALE_S:
            return f"took over the unreadable lock {path} ({age:.0f} s old; a live writer fills its lock at once)"
        return None
    if owner["host"] == platform.node() and not _alive(owner["pid"]):
        return ""  # its process is gone: the usual end of a killed run, taken over without a word
    return None


def claim(out_dir: str | Path, cid: str) -> bool:
    """Take the cell's lock: True if this process may compute it, False if a process that may be alive
    holds it (two sweeps on one folder never compute one cell twice). A lock whose process is gone, or an
    unreadable one older than UNREADABLE_LOCK_STALE_S, is taken over."""
    path = cell_dir(out_dir, cid) / LOCK_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        check_cell_paths(out_dir, [cid])  # names what is in the way
        raise
    for _ in range(2):
        if _place_lock(path):
            return True
        try:
            owner, age, inode = read_lock(path)
        except FileNotFoundError:
            continue  # released meanwhile
        why = _stale(path, owner, age)
        if why is None:
            return False
        # Move the stale lock aside, then make sure it was the one judged: another process may have taken
        # it over between the read and the move (then its fresh lock is put back and the cell left to it).
        aside = path.with_name(f".lock.stale-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            continue
        if aside.stat().st_ino != inode:
            try:
                os.link(aside, path)
            except FileExistsError:
                pass
            aside.unlink(missing_ok=True)
            return False
        aside.unlink(missing_ok=True)
        if why:
            warn(why)
    return False


def release(out_dir: str | Path, cid: str) -> None:
    (cell_dir(out_dir, cid) / LOCK_NAME).unlink(missing_ok=True)


def lock_holder(out_dir: str | Path, cid: str) -> str | None:
    """Who may be computing the cell, in words ('process 123 on host-a'), or None if no one."""
    path = cell_dir(out_dir, cid) / LOCK_NAME
    try:
        owner, age, _ = read_lock(path)
    except OSError:
        return None
    if _stale(path, owner, age) is not None:
        return None
    return f"process {owner['pid']} on {owner['host']}" if owner else f"the writer of the unreadable lock {path}"
