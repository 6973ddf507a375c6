"""SQLite storage: ``saver`` (the public ``SQLiteSaver``), ``backend`` (the storage
contract on a connection), ``operations`` (one transaction each, on sqlite3), ``sql``
(every statement), ``migrations`` (the schema), ``database`` (one file: options, pragmas,
errors), ``connection`` (aiosqlite's thread); ``store`` and ``store_sql``: the memory store
and node cache (``SQLiteStore``, ``SQLiteCache``) on the same file."""

from .backend import SQLiteBackend
from .migrations import MIGRATIONS, SCHEMA_VERSION, migrate
from .saver import SQLiteSaver

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteBackend", "SQLiteSaver", "migrate"]
