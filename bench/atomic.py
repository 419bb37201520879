"""Every file the harness writes goes through here: written whole under a temporary name in the same
folder and renamed into place, so that a reader sees the old file or the new one, never half of one.

- The temporary file is removed on any failure (a full disk, a file-size limit, Ctrl-C).
- It is created with mode 0666 less the user's umask, like any file `open()` creates: a rename keeps the
  temporary file's mode, and `tempfile.mkstemp`'s 0600 made results unreadable to the user's group.
- An I/O error names the file that was being written (a failed `write()` names none by itself).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


class WriteError(OSError):
    """An I/O error while writing `filename`; str() is one line: what went wrong and which file."""

    def __str__(self) -> str:
        return f"{self.strerror}: {self.filename}"


def _named(e: OSError, path: Path) -> WriteError:
    return WriteError(e.errno or errno.EIO, e.strerror or str(e), str(path))


def _temporary(path: Path) -> Path:
    # in the same folder (a rename across file systems is not atomic); hidden, and random so that two
    # writers of one file never share a temporary
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | Path, mkdir: bool = True) -> Iterator[Path]:
    """A temporary path for a writer that wants a file name (pandas, matplotlib, numpy, torch): it is
    renamed to `path` when the block ends without an exception, and removed otherwise."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        if mkdir:
            path.parent.mkdir(parents=True, exist_ok=True)
        # created here, with the umask's mode: the writer then truncates and fills the same inode
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _named(e, path) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes, fsync: bool = False) -> None:
    """Write `data` to `path` whole or not at all. `fsync`: on disk before the rename (a result file,
    which must survive a power cut as a whole file or none)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())


def write_text(path: str | Path, text: str, fsync: bool = False) -> None:
    write_bytes(path, text.encode("utf-8"), fsync=fsync)


def write_with(path: str | Path, writer: Callable[[Path], Any]) -> None:
    """`writer(tmp)` writes the file at a temporary path (df.to_parquet, fig.savefig, np.savez)."""
    with atomic_path(path) as tmp:
        writer(tmp)


def route_hydra_writes() -> None:
    """Hydra writes a sweep's multirun.yaml and each job's .hydra/*.yaml with a plain open(): under a file
    -size limit or on a full disk they were left cut short, and the error named no file. Route both through
    write_text. Called when a run starts: Hydra's plugin scan re-executes the basic sweeper's module, which
    undoes an earlier call. Safe to call more than once."""
    from hydra._internal.core_plugins import basic_sweeper
    from hydra.core import utils
    from omegaconf import OmegaConf

    def save_config(cfg: Any, filename: str, output_dir: Path) -> None:
        write_text(Path(output_dir) / filename, OmegaConf.to_yaml(cfg))

    class AtomicOmegaConf:
        """OmegaConf for the basic sweeper's module, whose only use of it is saving multirun.yaml."""

        def __getattr__(self, name: str) -> Any:
            return getattr(OmegaConf, name)

        @staticmethod
        def save(config: Any, f: Any, resolve: bool = False) -> None:
            if isinstance(f, (str, Path)):
                write_text(f, OmegaConf.to_yaml(config, resolve=resolve))
            else:
                OmegaConf.save(config, f, resolve=resolve)

    utils._save_config = save_config
    basic_sweeper.OmegaConf = AtomicOmegaConf()
