"""Turn config errors (ours, Hydra's, OmegaConf's) into one line that names the key, the bad value
and the allowed values."""

from __future__ import annotations

import dataclasses

from hydra.errors import HydraException, MissingConfigException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from bench.config import GROUP_SCHEMAS, ConfigError
from bench.results import ExperimentMismatch, FolderError


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def one_line(e: BaseException) -> str | None:
    """The one-line message for a user error, or None when `e` is a bug that deserves a traceback."""
    if isinstance(e, (ConfigError, FileNotFoundError, ExperimentMismatch, FolderError)):
        return _first_line(e)
    if isinstance(e, OSError) and e.strerror:  # permissions, a full disk, a read-only folder
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    if isinstance(e, MissingConfigException):
        options = sorted(o for o in e.options or [] if not o.startswith("schema_"))  # schemas are not options
        msg = _first_line(e)
        return f"{msg} (allowed: {', '.join(options)})" if options else msg
    if not isinstance(e, (HydraException, OmegaConfBaseException)):
        return None
    parts, allowed, elsewhere, cause = [_first_line(e)], None, "", e
    while cause is not None:
        object_type = getattr(cause, "object_type", None)
        unknown_key = isinstance(cause, (ConfigKeyError, ConfigAttributeError))
        if unknown_key and object_type is not None and dataclasses.is_dataclass(object_type):
            allowed = [f.name for f in dataclasses.fields(object_type)]
            elsewhere = elsewhere or _options_with_key(object_type, getattr(cause, "key", None))
        line = _first_line(cause)
        # OmegaConf's unformatted message template ('$VALUE') repeats a line already shown, with holes
        if cause is not e and line not in parts and "$" not in line:
            parts.append(line)
        cause = cause.__cause__ or cause.__context__
    msg = ": ".join(p.rstrip(".") for p in parts)
    return f"{msg} (allowed keys: {', '.join(allowed)}{elsewhere})" if allowed else msg


def _options_with_key(schema: type, key) -> str:
    """Where a key another option of the same group reads belongs: '; root is read by data=mnist, ...'.
    In a multirun, Hydra checks keys against the group's default option before any job's choice applies,
    so a sweep over several options sets their own keys in a preset that overrides the default."""
    for group, schemas in GROUP_SCHEMAS.items():
        if schema in schemas.values() and key is not None:
            owners = [kind for kind, s in schemas.items() if key in {f.name for f in dataclasses.fields(s)}]
            if owners:
                return f"; {key} is read by {group}={', '.join(owners)}"
    return ""
