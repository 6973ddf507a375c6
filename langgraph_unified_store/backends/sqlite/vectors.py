"""sqlite-vec on the store's own sqlite3 connection, so vector search ranks in SQL.

One SQLite library per process: the extension is loaded into the very library the
``sqlite3`` module uses, never through a second bundled copy (sqlean, pysqlite3, apsw).
Two copies of SQLite in one process do not see each other's locks (POSIX locks are per
process; each copy tracks its own), so a saver on one copy and a store on the other,
sharing a file, would both take the write lock at once and lose writes.

Where ``sqlite3`` can load extensions (most builds), ``sqlite_vec.load`` does it. Where
the module was built without ``enable_load_extension`` but links a shared libsqlite3 (as
on this Linux build), the extension's entry point is registered with that library's
public ``sqlite3_auto_extension`` for the moment our connection opens, then withdrawn.
Where neither works (or sqlite-vec is not installed), the connection is a plain one and
the store ranks in the core, as before: ``vec_version`` answering decides.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import os
import sqlite3
import struct
import threading
from collections.abc import Sequence
from functools import cache
from typing import Any

_AUTO_EXTENSION_LOCK = threading.Lock()


def connect(path: str) -> sqlite3.Connection:
    """A sqlite3 connection to ``path`` (as the saver's: autocommit, any thread) with
    sqlite-vec loaded where this Python's SQLite allows it."""
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        with contextlib.suppress(Exception):
            import sqlite_vec

            db.enable_load_extension(True)
            try:
                sqlite_vec.load(db)
            finally:
                db.enable_load_extension(False)
        return db
    entry = _auto_entry()
    if entry is None:
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    library, init = entry
    with _AUTO_EXTENSION_LOCK:
        library.sqlite3_auto_extension(init)
        try:
            return sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        finally:
            library.sqlite3_cancel_auto_extension(init)


@cache
def _auto_entry() -> tuple[Any, ctypes.c_void_p] | None:
    """The libsqlite3 the ``sqlite3`` module runs on and sqlite-vec's entry point, or
    None. Loading a library already in the process returns that copy; a different copy
    (a statically linked ``_sqlite3``) is harmless: vec_version then does not answer."""
    try:
        import sqlite_vec

        name = ctypes.util.find_library("sqlite3")
        if name is None:
            return None
        library = ctypes.CDLL(name)
        library.sqlite3_libversion.restype = ctypes.c_char_p
        if library.sqlite3_libversion().decode() != sqlite3.sqlite_version:
            return None
        extension = ctypes.CDLL(_loadable_file(sqlite_vec.loadable_path()))
        init = ctypes.cast(extension.sqlite3_vec_init, ctypes.c_void_p)
        library.sqlite3_auto_extension.argtypes = [ctypes.c_void_p]
        library.sqlite3_cancel_auto_extension.argtypes = [ctypes.c_void_p]
        return library, init
    except Exception:
        return None


def _loadable_file(path: str) -> str:
    """The file of sqlite_vec's loadable path (given without the platform's suffix)."""
    for suffix in (".so", ".dylib", ".dll", ""):
        if os.path.exists(path + suffix):
            return path + suffix
    raise FileNotFoundError(path)


def has_vec(db: sqlite3.Connection) -> bool:
    """Whether sqlite-vec's functions answer on ``db``."""
    try:
        db.execute("SELECT vec_version()").fetchone()
    except sqlite3.Error:
        return False
    return True


def unit_float32(vector: Sequence[float]) -> bytes:
    """The float32 copy SQL ranks on: the vector scaled to unit length first (cosine does
    not change), so no float64 value overflows float32 and sqlite-vec's float32 sums stay
    within a known error; a zero vector stays zero (sqlite-vec then gives NULL)."""
    norm = math.hypot(*vector)  # scaled inside: no overflow or underflow of the squares
    if math.isinf(norm):  # the norm itself past float64: scale down first
        largest = max(map(abs, vector))
        vector = [x / largest for x in vector]
        norm = math.hypot(*vector)
    if norm == 0.0:
        return bytes(4 * len(vector))  # float32 zeros
    return struct.pack(f"<{len(vector)}f", *[x / norm for x in vector])


def cosine_error_bound(dims: int) -> float:
    """A bound on |sqlite-vec's float32 cosine distance of unit_float32 copies - the
    float64 one|: rounding each component (2u), float32 sums of ``dims`` products and
    squares (dims*u each, relative to 1 by Cauchy-Schwarz), the square roots and the
    division, doubled for margin; u = 2**-24."""
    return 2.0 * (3 * dims + 16) * 2.0**-24
