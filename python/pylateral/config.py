"""Reading pylateral's settings from arguments and the environment."""
import os

import _lateral

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

def resolve_workers(max_workers):
    """``max_workers`` if given, else ``$PYLATERAL_WORKERS``, else 5 x CPUs."""
    if max_workers is not None:
        return _lateral.check_workers(max_workers)
    from_env = _lateral.workers_from_env("PYLATERAL_WORKERS")
    return from_env if from_env is not None else (os.cpu_count() or 1) * 5


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
