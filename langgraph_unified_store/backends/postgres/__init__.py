"""PostgreSQL storage on asyncpg (see ``backend.py`` for why it is shaped as it is).

- ``saver.py``: PostgresSaver, the public saver, and its options;
- ``backend.py``: PostgresBackend, the storage contract of ``core.backend`` on lus_store;
- ``threads.py``: its base class, the data lifecycle (lus_threads) and its primitives;
- ``sql.py``: every statement it runs, written out in full;
- ``migrations.py``: the DDL and the versioned migrations;
- ``connection.py``: pools per event loop, retries, error translation;
- ``store.py``: PostgresStore and PostgresCache (LangGraph's BaseStore and BaseCache) on
  lus_memory_items, lus_memory_vectors and lus_node_cache; ``store_sql.py``: their
  statements;
- ``keys.py`` and ``ordered_ids.py``: the binary row keys and stored type codes;
- ``rows.py``: rows <-> records, writes packed into rows.
"""

from .backend import PostgresBackend
from .migrations import SCHEMA_VERSION
from .saver import PostgresSaver

__all__ = ["SCHEMA_VERSION", "PostgresBackend", "PostgresSaver"]
