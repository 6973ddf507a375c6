"""Plain Redis storage (core commands and Lua only): Redis 6.2+, Valkey, Redis Cluster.

Every key of one thread carries the same hash tag, ``{t<base64url of the thread id>}``,
so a thread lives in one cluster slot and each operation on it is one Lua script: atomic,
one round trip, and its keys expire together. Per-thread sorted sets index checkpoints by
namespace and by id, so nothing ever SCANs the keyspace. Global keys list threads
(``<prefix>:threads`` scored by expiry in ms, or +inf; ``<prefix>:threads:written`` by
last write; ``<prefix>:threads:names`` all 0, paged by id) and, without a TTL,
the threads of each run (``<prefix>:run:<hex run id>``). On a single server the put script
updates them itself; on a cluster they live in other slots and are written in the same
pipeline, a separate step. Readers treat them as hints: a listed thread that no longer
exists is skipped. With a TTL a run index could expire before threads that still hold the
run, so ``delete_for_runs`` walks the thread index instead.

Keys of one thread (``B`` = ``<prefix>:{t<tag>}``). A checkpoint is known by
``P`` = ``<hex ns>:<escaped id>`` (UTF-8 with NUL as 01 01 and 01 as 01 02: no NUL, and
it sorts as the id does) and by ``n``, its number in the thread, which names it in the
hashes: a short field keeps small values listpack-encoded and large ones cheap.

==========  =====  ==================================================================
``B:i``     zset   ``P NUL n`` of every checkpoint: one namespace's checkpoints are one
                   lexical range, and a checkpoint's number is one range lookup away
``B:a``     zset   ``<escaped id> NUL <hex ns>`` of checkpoints outside the root
                   namespace; merged with the root's range of B:i, all namespaces
                   come newest first
``B:c``     hash   n -> frame(head JSON: parent and channel versions, type, record bytes;
                   older records may be in the legacy deflated form, see values.py)
``B:m``     hash   n -> metadata JSON (what list filters read, server-side)
``B:r``     hash   n -> run id; ``#`` -> the last number given (numbers are never reused)
``B:b``     hash   ``<hex ns>:<hex channel>:<version>`` -> frame(item refs, type, bytes)
``B:w``     hash   ``n NUL k`` -> frame(item refs, head JSON, bytes), k = 0, 1, ...;
                   writes to a checkpoint not stored yet wait as ``P NUL k``
``B:t``     hash   item ref -> frame(item refs, type, bytes)
``B:h``     hash   the lifecycle, in ms of the client's clock: ``f`` first write, ``l``
                   last write, ``t`` own ttl (0: pinned), ``e`` expiry (absent: never)
==========  =====  ==================================================================

A checkpoint's blob fields follow from the channel versions in its head, so scripts
derive them (nothing lists them twice). Its writes are numbered from 0 without a gap, so
scripts find them by probing (no index); a write's head begins with its task id and
index, which is what a second write of the same key is matched on.

Where things are: ``keys.py`` (keys, fields, members), ``values.py`` (stored values and
reading what scripts return), ``lua/`` (one script per operation, helpers in
``lua/lib/``), ``scripts.py`` (loading them, and one wrapper per script naming its
arguments), ``client.py`` (clients, retries, errors), ``threads.py`` (the global thread
indexes and the lifecycle primitives), ``backend.py`` and ``saver.py``. The long-term
memory store and the node cache (``RedisStore``, ``RedisCache``) are ``store.py``, their
keys and values ``store_keys.py``, their scripts ``lua/store_*.lua`` and ``lua/cache_*.lua``.
"""

from __future__ import annotations

from ...registry import DEFAULT_PREFIX, DEFAULT_SOCKET_TIMEOUT, MAX_TTL_SECONDS
from .backend import LIST_PAGE, LIST_SCAN_BUDGET, RedisBackend
from .client import SCRIPT_REFUSAL, RedisClient
from .saver import RedisSaver
from .threads import PIPELINE_CHUNK
from .values import DEFLATED_RECORD_PREFIX, LUA_EXACT_INT, deflate_record, inflate_record

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_SOCKET_TIMEOUT",
    "DEFLATED_RECORD_PREFIX",
    "LIST_PAGE",
    "LIST_SCAN_BUDGET",
    "LUA_EXACT_INT",
    "MAX_TTL_SECONDS",
    "PIPELINE_CHUNK",
    "SCRIPT_REFUSAL",
    "RedisBackend",
    "RedisClient",
    "RedisSaver",
    "deflate_record",
    "inflate_record",
]
