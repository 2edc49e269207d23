"""Reading pylateral's settings from arguments and the environment."""
import os

import _lateral

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

#: The core's limit on a pool's threads, checked here so that
#: the error names the setting the value came from.
MAX_WORKERS = _lateral.MAX_WORKERS


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be greater than 0, got {value!r}")
    if value > MAX_WORKERS:
        raise ValueError(f"{name} must be at most {MAX_WORKERS}, got {value!r}")
    return value


def resolve_workers(max_workers):
    """``max_workers`` if given, else ``$PYLATERAL_WORKERS``, else 5 x CPUs."""
    if max_workers is not None:
        return _positive_int(max_workers, "max_workers")
    raw = os.environ.get("PYLATERAL_WORKERS")
    if raw is not None and raw.strip():
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(
                f"PYLATERAL_WORKERS must be a positive integer, got {raw!r}") from None
        if value <= 0:
            raise ValueError(f"PYLATERAL_WORKERS must be greater than 0, got {raw!r}")
        if value > MAX_WORKERS:
            raise ValueError(f"PYLATERAL_WORKERS must be at most {MAX_WORKERS}, got {raw!r}")
        return value
    return (os.cpu_count() or 1) * 5


def enabled():
    """False when ``$PYLATERAL_ENABLED`` says so (``false``, any case)."""
    raw = os.environ.get("PYLATERAL_ENABLED")
    if raw is None or not raw.strip():
        return True
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"PYLATERAL_ENABLED must be true or false (or 1/0, yes/no, on/off), got {raw!r}")
