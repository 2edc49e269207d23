"""Reading pylateral's settings from arguments and the environment.

Each setting is the argument when one is given, else its ``PYLATERAL_*``
environment variable (the published pylateral's names), else the default.
"""
import os

import _lateral

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def resolve_workers(max_workers: int | None) -> int:
    """``max_workers`` if given, else ``$PYLATERAL_WORKERS``, else 5 x CPUs."""
    if max_workers is not None:
        return _lateral.check_workers(max_workers)
    from_env = _lateral.workers_from_env("PYLATERAL_WORKERS")
    return from_env if from_env is not None else (os.cpu_count() or 1) * 5


def resolve_timeout(timeout: float | None) -> float | None:
    """``timeout`` if given, else ``$PYLATERAL_TIMEOUT`` (seconds), else None."""
    if timeout is not None:
        return _lateral.check_timeout(timeout)
    raw = os.environ.get("PYLATERAL_TIMEOUT")
    if raw is None or not raw.strip():
        return None
    try:
        return _lateral.check_timeout(float(raw))
    except ValueError:
        raise ValueError(f"PYLATERAL_TIMEOUT must be a non-negative number of seconds, "
                         f"got {raw!r}") from None


def resolve_block(block_when_saturated: bool | None) -> bool:
    """``block_when_saturated`` if given, else ``$PYLATERAL_BLOCK_WHEN_SATURATED``,
    else False."""
    if block_when_saturated is not None:
        return bool(block_when_saturated)
    return env_flag("PYLATERAL_BLOCK_WHEN_SATURATED", False)


def check_bool(value: object, name: str) -> bool:
    """``value`` if it is True or False, else TypeError naming ``name``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def enabled() -> bool:
    """False when ``$PYLATERAL_ENABLED`` says so (``false``, any case)."""
    return env_flag("PYLATERAL_ENABLED", True)


def env_flag(name: str, default: bool) -> bool:
    """The boolean environment variable ``name``: true/false, 1/0, yes/no or
    on/off in any case; ``default`` when unset or empty; ValueError else."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false (or 1/0, yes/no, on/off), got {raw!r}")
