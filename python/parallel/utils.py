"""``parallel.utils``: the published python-parallel's home of
:func:`split_collection`, the chunking of :func:`parallel.split`."""
import collections.abc
from collections.abc import Iterator, Sequence
from typing import TypeVar

import _lateral

_T = TypeVar("_T")


def split_collection(collection: Sequence[_T], chunks: int) -> Iterator[Sequence[_T]]:
    """An iterator over ``collection`` (a list, a tuple or another sequence)
    in at most ``chunks`` consecutive slices, ``ceil(len / chunks)`` items
    each (the last one shorter); never an empty slice.  TypeError or
    ValueError, at the call, for anything else or a bad ``chunks``."""
    chunks = _lateral.check_workers(chunks, "chunks")
    if isinstance(collection, (str, bytes, bytearray)) or \
            not isinstance(collection, collections.abc.Sequence):
        raise TypeError(f"split needs a list, a tuple or another sequence, got "
                        f"{type(collection).__name__}")
    size = max(1, -(-len(collection) // chunks))
    return (collection[start:start + size] for start in range(0, len(collection), size))


__all__ = ["split_collection"]
