"""``__version__`` of pylateral, parallel and strand: the version of the
installed ``lateral`` distribution, read from its metadata on first use."""
import functools
from collections.abc import Callable

#: ``__version__`` when the packages are imported from a source tree that was
#: never installed (there is no metadata to read).
UNKNOWN = "0+unknown"


@functools.lru_cache(maxsize=None)
def version() -> str:
    """The installed ``lateral`` version, or :data:`UNKNOWN`."""
    # Imported here, not at the top: importlib.metadata takes longer to
    # import than pylateral itself, and most programs never ask.
    from importlib.metadata import PackageNotFoundError, version as installed
    try:
        return installed("lateral")
    except PackageNotFoundError:
        return UNKNOWN


def module_getattr(module_name: str) -> Callable[[str], str]:
    """A module-level ``__getattr__`` (PEP 562) that gives ``__version__``."""
    def __getattr__(name: str) -> str:
        if name == "__version__":
            return version()
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
    return __getattr__
