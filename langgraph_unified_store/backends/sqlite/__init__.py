"""SQLite storage: ``saver`` (the public ``SQLiteSaver``), ``backend`` (the storage
contract on a connection), ``operations`` (one transaction each, on sqlite3), ``sql``
(every statement), ``migrations`` (the schema), ``connection`` (aiosqlite's thread)."""

from .backend import SQLiteBackend
from .migrations import MIGRATIONS, SCHEMA_VERSION, migrate
from .saver import SQLiteSaver

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteBackend", "SQLiteSaver", "migrate"]
