r"""Every statement PostgresBackend runs on lus_store, written out in full.

Two placeholders are filled per saver, once, by ``bind`` (the one templating step):
``{schema}``, the quoted schema name, and ``{commit_mode}`` in each statement's lock
step, which is empty for durable commits and RELAXED_COMMIT with
``synchronous_commit=False``. READ_CHECKPOINTS also has a listing's shape, ``{where}``,
``{order}`` and ``{limit}``, filled by ``Statements.page`` from the fixed clauses below
(numbered parameters only: no user text is ever spliced in).

Keys (see ``keys.py``) are only ever taken apart here, by these expressions, written out
inline wherever a statement needs them (``c.key`` standing for the key column):
- a checkpoint key's namespace part, with the 0x00 after it (NS_PART_SQL):
  ``substring(c.key FROM 2 FOR position('\x00'::bytea IN c.key) - 1)``;
- its ordered id (ID_PART_SQL): ``substring(c.key FROM position('\x00'::bytea IN c.key) + 1)``;
- all checkpoint keys: ``c.key >= '\x63'::bytea AND c.key < '\x64'::bytea``;
- the writes of the checkpoint with key ``c.key`` (WRITE_PREFIX_SQL): keys in
  [``'\x77'::bytea || substring(c.key FROM 2)``, that || ``'\x03'::bytea``);
- the blob of a channel (BLOB_KEY_SQL): ``'\x62'::bytea || ns_part ||
  convert_to(version, 'UTF8') || '\x00'::bytea || convert_to(channel, 'UTF8')``;
- the item of a reference: ``'\x69'::bytea || ref``;
- the item references packed in ``refs``, as rows ``ref`` (16 bytes each, ITEM_REF_SIZE):
  ``(SELECT unnest(ARRAY(SELECT substring(refs FROM n * 16 + 1 FOR 16) FROM
  generate_series(0, length(refs) / 16 - 1) AS n)) AS ref)``. unnest() of an array makes
  the planner expect a few rows, where generate_series() alone would make it expect a
  thousand per row and cost generic plans high enough to be JIT-compiled (seconds).
Every thread also has a row in ``threads`` (``migrations.MIGRATION_3``): every write
upserts it in its own statement, stamped with ``$now`` (``ThreadClock.now()``, bound by
the caller: one clock for every backend) and an expiry computed here from the row's
own_ttl and the saver's ttl, ``$now + nullif(coalesce(own_ttl, $ttl), 0)`` (NULL, and 0
which is ``lifecycle.PINNED``, mean never). Every read skips threads whose expiry is at
or before ``$now`` (THREAD_LIVE_CLAUSE). A write that finds its thread expired writes
nothing and says so (a row of NULLs), and the backend removes the thread before it
writes again (``PostgresBackend._purge_expired``), so nothing expired comes back.

A damaged channel_versions that is not a JSON object names no blobs (``CASE WHEN
json_typeof(...) = 'object' ... ELSE '{}'::json END``), so the row still reaches Python,
where load_channel_versions reports it as CorruptDataError.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ...core.records import ITEM_REF_SIZE

# The key expressions above, with ``{key}`` (and the blob key's parts) as placeholders:
# tests/test_postgres.py runs them against keys.py. The statements spell them out.
NS_PART_SQL: Final = r"substring({key} FROM 2 FOR position('\x00'::bytea IN {key}) - 1)"
ID_PART_SQL: Final = r"substring({key} FROM position('\x00'::bytea IN {key}) + 1)"
WRITE_PREFIX_SQL: Final = r"('\x77'::bytea || substring({key} FROM 2))"
BLOB_KEY_SQL: Final = (
    r"('\x62'::bytea || {ns_part} || convert_to({version}, 'UTF8') || '\x00'::bytea || "
    r"convert_to({channel}, 'UTF8'))"
)
assert ITEM_REF_SIZE == 16, "the statements below unpack 16-byte item references"

# ``{commit_mode}`` with synchronous_commit=False: a transaction-scoped setting (so it
# works through PgBouncer too, unlike a session SET).
RELAXED_COMMIT: Final = ", set_config('synchronous_commit', 'off', true)"
# Sent once per connection of the saver's own pools: puts would otherwise be planned
# afresh on every call, as unnest() of parameter arrays looks dear to a generic plan.
GENERIC_PLANS: Final = "SET plan_cache_mode = force_generic_plan"

# -- writing --------------------------------------------------------------------------------

# One statement: shared thread lock, the check that every blob the put relies on without
# sending it is still stored (blobs whose items a list extends, blobs it inherits), then
# (only if so) new items and blobs (insert-if-absent rows) and the checkpoint; it returns
# the missing ones, so a non-empty result means nothing was written (the core re-sends).
#
# Why no collection can leave this put naming a row it removed. The put P runs in READ
# COMMITTED, so its snapshot S is taken when the statement starts, before it gets the
# thread's shared advisory lock. A collection G (delete_thread, retain, delete_for_runs)
# takes the thread's exclusive lock in one statement, then deletes in a second one whose
# snapshot follows the lock, then commits. Every interleaving is one of:
# 1. G commits before S: P's snapshot no longer shows the rows; the checks miss them.
# 2. G holds the lock when P starts: P waits for it; once G commits P goes on with the
#    older S, which still shows the deleted rows. So the checks are locking reads (FOR
#    KEY SHARE): in READ COMMITTED a locking read looks at the newest committed version
#    of each row, and a row G deleted is not returned, so it is reported missing. A row P
#    sends that G deleted is inserted again: ON CONFLICT's arbiter also looks at the
#    newest version, not at S.
# 3. P gets the lock first: G's exclusive lock waits until P commits, and G's delete
#    statement then sees P's checkpoint, which names every blob it sent or inherits and,
#    through them, every item; G keeps them.
# So G's deletes never run while P runs: G never waits on a row lock of P's (the worry
# that a waiting DELETE does not re-check its NOT EXISTS cannot arise). The lock must be
# taken before the checks run, or P could hold a row lock G's DELETE waits for while P
# waits for G's advisory lock: ``missing`` joins ``thread_lock`` as the outer side of a
# nested loop, and tests/reliability/test_gc_races.py checks the plan keeps it so.
# $1 lock key, $2 thread, $3 checkpoint key, $4-$7 rows (key, type, data, refs) of items
# and blobs, $8-$10 the rows relied on (channel, version, key), $11 parent, $12 type,
# $13 data, $14 channel_versions, $15 metadata, $16 run_id, $17 now, $18 the saver's ttl
# (NULL: none). A thread that has expired gets nothing written and a (NULL, NULL) row
# back; the thread row is stamped in the same statement (``stamp``).
PUT_CHECKPOINT: Final = """
WITH thread_lock AS (SELECT pg_advisory_xact_lock_shared($1::bigint){commit_mode}),
expired AS (
    SELECT 1 FROM thread_lock, {schema}.lus_threads t
    WHERE t.thread_id = $2::text AND t.expires_at <= $17::float8
),
missing AS (
    SELECT b.channel, b.base
    FROM thread_lock, unnest($8::text[], $9::text[], $10::bytea[]) AS b(channel, base, key)
    WHERE NOT EXISTS (
        SELECT 1 FROM {schema}.lus_store x
        WHERE x.thread_id = $2::text AND x.key = b.key
        FOR KEY SHARE)
),
new_data AS (
    INSERT INTO {schema}.lus_store (thread_id, key, type, data, refs)
    SELECT $2::text, d.key, d.type, d.data, d.refs
    FROM thread_lock, unnest($4::bytea[], $5::text[], $6::bytea[], $7::bytea[])
        AS d(key, type, data, refs)
    WHERE NOT EXISTS (SELECT 1 FROM missing) AND NOT EXISTS (SELECT 1 FROM expired)
    ON CONFLICT DO NOTHING
),
new_checkpoint AS (
    INSERT INTO {schema}.lus_store (thread_id, key, type, data, refs, channel_versions,
        metadata, run_id)
    SELECT $2::text, $3::bytea, $12::text, $13::bytea, $11::bytea, $14::json, $15::jsonb,
        $16::text
    FROM thread_lock
    WHERE NOT EXISTS (SELECT 1 FROM missing) AND NOT EXISTS (SELECT 1 FROM expired)
    ON CONFLICT (thread_id, key) DO UPDATE SET
        type = EXCLUDED.type,
        data = EXCLUDED.data,
        refs = EXCLUDED.refs,
        channel_versions = EXCLUDED.channel_versions,
        metadata = EXCLUDED.metadata,
        run_id = EXCLUDED.run_id
),
stamp AS (
    INSERT INTO {schema}.lus_threads AS t (thread_id, first_write, last_write, expires_at)
    SELECT $2::text, $17::float8, $17::float8, $17::float8 + nullif($18::float8, 0)
    FROM thread_lock
    WHERE NOT EXISTS (SELECT 1 FROM missing) AND NOT EXISTS (SELECT 1 FROM expired)
    ON CONFLICT (thread_id) DO UPDATE SET
        last_write = EXCLUDED.last_write,
        expires_at = EXCLUDED.last_write + nullif(coalesce(t.own_ttl, $18::float8), 0)
)
SELECT channel, base FROM missing
UNION ALL
SELECT NULL, NULL FROM expired"""

# $1 lock key, $2 thread, $3-$6 items (key, type, data, refs), $7-$10 writes rows (key,
# type, data, refs), $11-$13 each row's condition (``rows.write_rows``): ``WriteMode``
# 0 always, 1 only if the task's key range [$12, $13] holds no row yet; $14 true
# overwrites a stored row (``replace``), false keeps it (a conflicting row that is not
# updated is not returned, as with DO NOTHING). Returns the keys it stored. $15 now, $16
# the saver's ttl: as PUT_CHECKPOINT, an expired thread gets nothing and a NULL key back.
PUT_WRITES: Final = """
WITH thread_lock AS (SELECT pg_advisory_xact_lock_shared($1::bigint){commit_mode}),
expired AS (
    SELECT 1 FROM thread_lock, {schema}.lus_threads t
    WHERE t.thread_id = $2::text AND t.expires_at <= $15::float8
),
new_items AS (
    INSERT INTO {schema}.lus_store (thread_id, key, type, data, refs)
    SELECT $2::text, i.key, i.type, i.data, i.refs
    FROM thread_lock, unnest($3::bytea[], $4::text[], $5::bytea[], $6::bytea[])
        AS i(key, type, data, refs)
    WHERE NOT EXISTS (SELECT 1 FROM expired)
    ON CONFLICT DO NOTHING
),
new_writes AS (
    INSERT INTO {schema}.lus_store (thread_id, key, type, data, refs)
    SELECT $2::text, w.key, w.type, w.data, w.refs
    FROM thread_lock, unnest($7::bytea[], $8::text[], $9::bytea[], $10::bytea[], $11::int[],
        $12::bytea[], $13::bytea[]) AS w(key, type, data, refs, mode, low, high)
    WHERE NOT EXISTS (SELECT 1 FROM expired) AND (w.mode = 0 OR NOT EXISTS (
        SELECT 1 FROM {schema}.lus_store x
        WHERE x.thread_id = $2::text AND x.key >= w.low AND x.key <= w.high))
    ON CONFLICT (thread_id, key) DO UPDATE SET
        type = EXCLUDED.type, data = EXCLUDED.data, refs = EXCLUDED.refs
        WHERE $14::boolean
    RETURNING key
),
stamp AS (
    INSERT INTO {schema}.lus_threads AS t (thread_id, first_write, last_write, expires_at)
    SELECT $2::text, $15::float8, $15::float8, $15::float8 + nullif($16::float8, 0)
    FROM thread_lock
    WHERE NOT EXISTS (SELECT 1 FROM expired)
    ON CONFLICT (thread_id) DO UPDATE SET
        last_write = EXCLUDED.last_write,
        expires_at = EXCLUDED.last_write + nullif(coalesce(t.own_ttl, $16::float8), 0)
)
SELECT key FROM new_writes
UNION ALL
SELECT NULL FROM expired"""

# -- reading --------------------------------------------------------------------------------

# Checkpoints with their blobs and writes, one row each, in one statement; the items
# they need (and the items those name) come once per page, on the first row. Each blob,
# write range and item is one index probe per key: LIMIT 1 (the key is unique anyway)
# keeps the planner from turning them into hash joins over a whole thread's rows, and
# OFFSET 0 keeps a writes range an index range scan per row (and computes its prefix
# once per checkpoint rather than once per bound).
READ_CHECKPOINTS: Final = r"""
WITH page AS (
    SELECT c.thread_id, c.key, c.refs, c.type, c.data, c.channel_versions, c.metadata,
        c.run_id, substring(c.key FROM 2 FOR position('\x00'::bytea IN c.key) - 1) AS ns_part,
        row_number() OVER (ORDER BY {order}) AS position
    FROM {schema}.lus_store c
    WHERE c.key >= '\x63'::bytea AND c.key < '\x64'::bytea AND {where}
    ORDER BY {order}
    LIMIT {limit}
),
page_blobs AS (
    SELECT p.position, p.thread_id, v.channel, v.version, b.type, b.data, b.refs
    FROM page p
    CROSS JOIN LATERAL json_each_text(CASE WHEN json_typeof(p.channel_versions) = 'object'
        THEN p.channel_versions ELSE '{}'::json END) AS v(channel, version)
    CROSS JOIN LATERAL (
        SELECT x.type, x.data, x.refs FROM {schema}.lus_store x
        WHERE x.thread_id = p.thread_id AND x.key = ('\x62'::bytea || p.ns_part
            || convert_to(v.version, 'UTF8') || '\x00'::bytea || convert_to(v.channel, 'UTF8'))
        LIMIT 1) b
),
page_writes AS (
    SELECT p.position, p.thread_id, w.key, w.type, w.data, w.refs
    FROM page p
    CROSS JOIN LATERAL (SELECT ('\x77'::bytea || substring(p.key FROM 2)) AS prefix OFFSET 0) k
    CROSS JOIN LATERAL (
        SELECT x.key, x.type, x.data, x.refs
        FROM {schema}.lus_store x
        WHERE x.thread_id = p.thread_id AND x.key >= k.prefix
            AND x.key < k.prefix || '\x03'::bytea
        OFFSET 0) w
),
named AS (
    SELECT DISTINCT r.thread_id, r.ref FROM (
        SELECT b.thread_id, u.ref FROM page_blobs b
            CROSS JOIN LATERAL (SELECT unnest(ARRAY(SELECT substring(b.refs FROM n * 16 + 1 FOR 16)
            FROM generate_series(0, length(b.refs) / 16 - 1) AS n)) AS ref) u
        UNION ALL
        SELECT w.thread_id, u.ref FROM page_writes w
            CROSS JOIN LATERAL (SELECT unnest(ARRAY(SELECT substring(w.refs FROM n * 16 + 1 FOR 16)
            FROM generate_series(0, length(w.refs) / 16 - 1) AS n)) AS ref) u
    ) r
),
first_items AS (
    SELECT n.thread_id, n.ref, i.type, i.data, i.refs
    FROM named n CROSS JOIN LATERAL (
        SELECT x.type, x.data, x.refs FROM {schema}.lus_store x
        WHERE x.thread_id = n.thread_id AND x.key = ('\x69'::bytea || n.ref)
        LIMIT 1) i
),
inner_items AS (
    SELECT n.thread_id, n.ref, i.type, i.data, i.refs
    FROM (
        SELECT DISTINCT f.thread_id, u.ref
        FROM first_items f
            CROSS JOIN LATERAL (SELECT unnest(ARRAY(SELECT substring(f.refs FROM n * 16 + 1 FOR 16)
            FROM generate_series(0, length(f.refs) / 16 - 1) AS n)) AS ref) u
    ) n
    CROSS JOIN LATERAL (
        SELECT x.type, x.data, x.refs FROM {schema}.lus_store x
        WHERE x.thread_id = n.thread_id AND x.key = ('\x69'::bytea || n.ref)
        LIMIT 1) i
    WHERE NOT EXISTS (
        SELECT 1 FROM named m WHERE m.thread_id = n.thread_id AND m.ref = n.ref)
),
blob_lists AS (
    SELECT position, array_agg((channel, version, type, data, refs)) AS blobs
    FROM page_blobs GROUP BY position
),
write_lists AS (
    SELECT position, array_agg((key, type, data, refs)) AS writes
    FROM page_writes GROUP BY position
)
SELECT p.thread_id, p.key, p.refs, p.type, p.data, p.channel_versions, p.metadata,
    p.run_id, bl.blobs, wl.writes,
    CASE WHEN p.position = 1 THEN (
        SELECT array_agg((a.thread_id, a.ref, a.type, a.data, a.refs)) FROM (
            SELECT thread_id, ref, type, data, refs FROM first_items
            UNION ALL
            SELECT thread_id, ref, type, data, refs FROM inner_items
        ) a
    ) END AS items
FROM page p
LEFT JOIN blob_lists bl ON bl.position = p.position
LEFT JOIN write_lists wl ON wl.position = p.position
ORDER BY p.position"""

# Reads skip a thread that has expired ($? now), whether or not it has been swept yet:
# one primary key probe of ``threads`` per thread.
THREAD_LIVE_CLAUSE: Final = """NOT EXISTS (
        SELECT 1 FROM {schema}.lus_threads t
        WHERE t.thread_id = c.thread_id AND t.expires_at <= $?::float8)"""
# list's (and thread_page's) metadata filter: jsonb containment of the filter as JSON,
# so values match type-exactly (a bound parameter, never spliced).
METADATA_FILTER_CLAUSE: Final = "c.metadata @> $?::jsonb"

# The shapes of READ_CHECKPOINTS for one checkpoint: the latest of a namespace ($1
# thread, [$2, $3) the namespace's key range, $4 now) and one by key ($2, $3 now).
LATEST_CLAUSES: Final = (
    "c.thread_id = $1",
    "c.key >= $2",
    "c.key < $3",
    """NOT EXISTS (
        SELECT 1 FROM {schema}.lus_threads t
        WHERE t.thread_id = c.thread_id AND t.expires_at <= $4::float8)""",
)
BY_KEY_CLAUSES: Final = (
    "c.thread_id = $1",
    "c.key = $2",
    """NOT EXISTS (
        SELECT 1 FROM {schema}.lus_threads t
        WHERE t.thread_id = c.thread_id AND t.expires_at <= $3::float8)""",
)
BY_KEY_ORDER: Final = ("c.key",)
# Listing's sort keys (expressions of ``c``) when the namespace is not pinned.
ORDER_BY_ID: Final = r"substring(c.key FROM position('\x00'::bytea IN c.key) + 1)"
ORDER_BY_NS: Final = r"substring(c.key FROM 2 FOR position('\x00'::bytea IN c.key) - 1)"

SELECT_HEADS: Final = r"""
SELECT DISTINCT ON (substring(c.key FROM 2 FOR position('\x00'::bytea IN c.key) - 1))
    c.thread_id, c.key, c.refs, c.type, c.data, c.channel_versions, c.metadata, c.run_id
FROM {schema}.lus_store c
WHERE c.thread_id = $1 AND c.key >= '\x63'::bytea AND c.key < '\x64'::bytea
    AND NOT EXISTS (
        SELECT 1 FROM {schema}.lus_threads t
        WHERE t.thread_id = $1 AND t.expires_at <= $2::float8)
ORDER BY substring(c.key FROM 2 FOR position('\x00'::bytea IN c.key) - 1), c.key DESC"""
SELECT_THREAD_IDS: Final = r"""
SELECT DISTINCT thread_id FROM {schema}.lus_store c
WHERE c.key >= '\x63'::bytea AND c.key < '\x64'::bytea
    AND NOT EXISTS (
        SELECT 1 FROM {schema}.lus_threads t
        WHERE t.thread_id = c.thread_id AND t.expires_at <= $1::float8)
ORDER BY thread_id"""
# With ``refresh_on_read``: a read of these threads ($1) moves the expiry of each that
# has one and has not expired to $2 now + its ttl (own, else the saver's $3), as a
# write would; not its last write.
REFRESH_EXPIRY: Final = """
UPDATE {schema}.lus_threads t
SET expires_at = $2::float8 + nullif(coalesce(t.own_ttl, $3::float8), 0)
WHERE t.thread_id = ANY($1::text[]) AND t.expires_at > $2::float8"""
SELECT_THREADS_OF_RUNS: Final = (
    "SELECT DISTINCT thread_id FROM {schema}.lus_store WHERE run_id = ANY($1::text[])"
)

# -- deleting and copying -------------------------------------------------------------------

# Locks are taken in array order; callers sort the keys so deleters never deadlock.
LOCK_THREADS: Final = (
    "SELECT pg_advisory_xact_lock(k){commit_mode} FROM unnest($1::bigint[]) AS k"
)

# COLLECT deletes the ``doomed`` checkpoints and everything only they needed: their
# writes, blobs no survivor names, items no surviving blob, write or named segment
# references (core.rules.reachable, held to it by tests/contract). One statement, so
# every part sees the same snapshot (taken after the thread locks): it gathers the keys
# of every row a survivor needs, then deletes the rest. It returns how many checkpoints
# it deleted. ``$1`` is the thread ids in scope; the doomed are named one of two ways:
# - prune (``retain``): $2 the kept checkpoint keys, $3 NULL. A checkpoint newer than
#   every kept one of its namespace is spared (core.rules.retained), so a key of the same
#   namespace that sorts after it must be kept;
# - delete_for_runs: $2 NULL, $3 the run ids.
# A thread left with no checkpoint has nothing left at all (its orphaned writes go too),
# so its ``threads`` row goes with it (``emptied``).
COLLECT: Final = r"""
WITH doomed AS (
    SELECT c.thread_id, c.key FROM {schema}.lus_store c
    WHERE c.thread_id = ANY($1::text[]) AND c.key >= '\x63'::bytea AND c.key < '\x64'::bytea
        AND CASE WHEN $3::text[] IS NOT NULL THEN c.run_id = ANY($3::text[])
        ELSE c.key <> ALL($2::bytea[])
            AND EXISTS (
                SELECT 1 FROM unnest($2::bytea[]) AS k(key)
                WHERE k.key > c.key
                    AND substring(k.key FROM 2 FOR position('\x00'::bytea IN k.key) - 1)
                        = substring(c.key FROM 2 FOR position('\x00'::bytea IN c.key) - 1))
        END),
survivors AS (
    SELECT c.thread_id, c.key, c.channel_versions
    FROM {schema}.lus_store c
    WHERE c.thread_id = ANY($1::text[]) AND c.key >= '\x63'::bytea AND c.key < '\x64'::bytea
        AND NOT EXISTS (
            SELECT 1 FROM doomed d WHERE d.thread_id = c.thread_id AND d.key = c.key)
),
live_blob_keys AS (
    SELECT DISTINCT s.thread_id, ('\x62'::bytea
        || substring(s.key FROM 2 FOR position('\x00'::bytea IN s.key) - 1)
        || convert_to(v.version, 'UTF8') || '\x00'::bytea || convert_to(v.channel, 'UTF8')) AS key
    FROM survivors s
    CROSS JOIN LATERAL json_each_text(CASE WHEN json_typeof(s.channel_versions) = 'object'
        THEN s.channel_versions ELSE '{}'::json END) AS v(channel, version)
),
live_rows AS (
    SELECT x.thread_id, x.key, x.refs FROM {schema}.lus_store x JOIN live_blob_keys l
        ON x.thread_id = l.thread_id AND x.key = l.key
    UNION ALL
    -- a survivor whose channel_versions is not an object of strings might name any blob:
    -- every blob of its thread stays
    SELECT x.thread_id, x.key, x.refs FROM {schema}.lus_store x
    WHERE x.key >= '\x62'::bytea AND x.key < '\x63'::bytea AND x.thread_id IN (
        SELECT s.thread_id FROM survivors s
        WHERE CASE WHEN json_typeof(s.channel_versions) <> 'object' THEN true
            ELSE EXISTS (SELECT 1 FROM json_each(s.channel_versions) AS e
                WHERE json_typeof(e.value) <> 'string') END)
    UNION ALL
    SELECT x.thread_id, x.key, x.refs
    FROM survivors s
    CROSS JOIN LATERAL (SELECT ('\x77'::bytea || substring(s.key FROM 2)) AS prefix OFFSET 0) k
    JOIN {schema}.lus_store x ON x.thread_id = s.thread_id AND x.key >= k.prefix
        AND x.key < k.prefix || '\x03'::bytea
),
named AS (
    SELECT DISTINCT r.thread_id, ('\x69'::bytea || u.ref) AS key
    FROM live_rows r
        CROSS JOIN LATERAL (SELECT unnest(ARRAY(SELECT substring(r.refs FROM n * 16 + 1 FOR 16)
        FROM generate_series(0, length(r.refs) / 16 - 1) AS n)) AS ref) u
),
live_keys AS (
    SELECT thread_id, key FROM survivors
    UNION
    SELECT thread_id, key FROM live_rows
    UNION
    SELECT thread_id, key FROM named
    UNION
    SELECT i.thread_id, ('\x69'::bytea || u.ref) FROM {schema}.lus_store i
        JOIN named n ON i.thread_id = n.thread_id AND i.key = n.key
        CROSS JOIN LATERAL (SELECT unnest(ARRAY(SELECT substring(i.refs FROM n * 16 + 1 FOR 16)
            FROM generate_series(0, length(i.refs) / 16 - 1) AS n)) AS ref) u
),
gone AS (
    DELETE FROM {schema}.lus_store x
    WHERE x.thread_id = ANY($1::text[]) AND NOT EXISTS (
        SELECT 1 FROM live_keys l WHERE l.thread_id = x.thread_id AND l.key = x.key)
    RETURNING x.key
),
emptied AS (
    DELETE FROM {schema}.lus_threads t
    WHERE t.thread_id = ANY($1::text[]) AND NOT EXISTS (
        SELECT 1 FROM survivors s WHERE s.thread_id = t.thread_id)
)
SELECT count(*) FROM gone WHERE get_byte(key, 0) = 99"""

DELETE_THREAD: Final = """
WITH thread_row AS (DELETE FROM {schema}.lus_threads WHERE thread_id = $1)
DELETE FROM {schema}.lus_store WHERE thread_id = $1"""

# $1 source, $2 target, $3 target's lock key, $4 now, $5 the saver's ttl. Target
# checkpoints and writes are overwritten like a put; blobs and items are insert-if-absent
# (a key names one content). Nothing comes from a source that has expired; a target that
# has expired gets nothing and a row back (``expired``), as a put.
COPY_THREAD: Final = """
WITH thread_lock AS (SELECT pg_advisory_xact_lock_shared($3::bigint){commit_mode}),
expired AS (
    SELECT 1 FROM thread_lock, {schema}.lus_threads t
    WHERE t.thread_id = $2::text AND t.expires_at <= $4::float8
),
source AS (
    SELECT 1 FROM thread_lock
    WHERE NOT EXISTS (SELECT 1 FROM expired)
        AND EXISTS (SELECT 1 FROM {schema}.lus_store x WHERE x.thread_id = $1::text)
        AND NOT EXISTS (
            SELECT 1 FROM {schema}.lus_threads t
            WHERE t.thread_id = $1::text AND t.expires_at <= $4::float8)
),
copied AS (
    INSERT INTO {schema}.lus_store (thread_id, key, type, data, refs, channel_versions,
        metadata, run_id)
    SELECT $2::text, x.key, x.type, x.data, x.refs, x.channel_versions, x.metadata, x.run_id
    FROM source, {schema}.lus_store x WHERE x.thread_id = $1::text
    ON CONFLICT (thread_id, key) DO UPDATE SET
        type = EXCLUDED.type, data = EXCLUDED.data, refs = EXCLUDED.refs,
        channel_versions = EXCLUDED.channel_versions, metadata = EXCLUDED.metadata,
        run_id = EXCLUDED.run_id
        WHERE get_byte(EXCLUDED.key, 0) IN (99, 119)
),
stamp AS (
    INSERT INTO {schema}.lus_threads AS t (thread_id, first_write, last_write, expires_at)
    SELECT $2::text, $4::float8, $4::float8, $4::float8 + nullif($5::float8, 0)
    FROM source
    ON CONFLICT (thread_id) DO UPDATE SET
        last_write = EXCLUDED.last_write,
        expires_at = EXCLUDED.last_write + nullif(coalesce(t.own_ttl, $5::float8), 0)
)
SELECT count(*) FROM expired"""

# -- the lifecycle ----------------------------------------------------------------------------

# ``thread_page``: a page of ``threads`` rows, ``{where}`` all of the THREAD_* clauses the
# query needs (numbered by ``Statements.thread_page``), ``{order}`` the index it walks:
# the primary key for a listing (thread id order, from ``after``), or for a removal
# (``ThreadQuery.ordered=False``) lus_threads_by_expiry for a sweep, lus_threads_by_last_write
# for an age cutoff, and none (the planner's choice: the metadata GIN index) for a
# filter alone. $1 is the limit; it bounds every shape.
THREAD_PAGE: Final = """
SELECT t.thread_id, t.first_write, t.last_write, t.expires_at
FROM {schema}.lus_threads t
WHERE {where}
{order}
LIMIT $1"""
# The same with the stats of each thread of the page: its namespaces (key parts, each
# with its 0x00), checkpoint count and stored bytes: the stored (possibly compressed)
# size of every value of its lus_store rows and of its threads row, without row headers
# and index entries. One range scan of the thread's rows per thread of the page.
THREAD_PAGE_STATS: Final = r"""
SELECT t.thread_id, t.first_write, t.last_write, t.expires_at, s.namespaces, s.checkpoints,
    s.stored_bytes + pg_column_size(t.thread_id) + pg_column_size(t.first_write)
        + pg_column_size(t.last_write) + coalesce(pg_column_size(t.own_ttl), 0)
        + coalesce(pg_column_size(t.expires_at), 0) AS stored_bytes
FROM (
    SELECT t.thread_id, t.first_write, t.last_write, t.expires_at, t.own_ttl
    FROM {schema}.lus_threads t
    WHERE {where}
    {order}
    LIMIT $1
) t
CROSS JOIN LATERAL (
    SELECT
        array_agg(DISTINCT substring(x.key FROM 2 FOR position('\x00'::bytea IN x.key) - 1))
            FILTER (WHERE x.key >= '\x63'::bytea AND x.key < '\x64'::bytea) AS namespaces,
        count(*) FILTER (WHERE x.key >= '\x63'::bytea AND x.key < '\x64'::bytea) AS checkpoints,
        coalesce(sum(pg_column_size(x.thread_id) + pg_column_size(x.key)
            + pg_column_size(x.type) + pg_column_size(x.data)
            + coalesce(pg_column_size(x.refs), 0)
            + coalesce(pg_column_size(x.channel_versions), 0)
            + coalesce(pg_column_size(x.metadata), 0)
            + coalesce(pg_column_size(x.run_id), 0)), 0) AS stored_bytes
    FROM {schema}.lus_store x
    WHERE x.thread_id = t.thread_id
) s
{order}"""
# The clauses of THREAD_PAGE ($? numbered by the caller).
THREAD_AFTER_CLAUSE: Final = "t.thread_id > $?::text"
THREAD_UPDATED_AFTER_CLAUSE: Final = "t.last_write > $?::float8"
THREAD_UPDATED_BEFORE_CLAUSE: Final = "t.last_write < $?::float8"
THREAD_EXPIRED_CLAUSE: Final = "t.expires_at <= $?::float8"
# Without ``everything``: threads that have not expired ($? now) and hold a checkpoint.
THREAD_SHOWN_CLAUSE: Final = r"""(t.expires_at IS NULL OR t.expires_at > $?::float8)
    AND EXISTS (
        SELECT 1 FROM {schema}.lus_store c
        WHERE c.thread_id = t.thread_id AND c.key >= '\x63'::bytea AND c.key < '\x64'::bytea)"""
# A checkpoint of the thread whose metadata match the filter (METADATA_FILTER_CLAUSE).
THREAD_MATCHES_CLAUSE: Final = r"""EXISTS (
        SELECT 1 FROM {schema}.lus_store c
        WHERE c.thread_id = t.thread_id AND c.key >= '\x63'::bytea AND c.key < '\x64'::bytea
            AND c.metadata @> $?::jsonb)"""
THREAD_ORDER_BY_ID: Final = "ORDER BY t.thread_id"
THREAD_ORDER_BY_EXPIRY: Final = "ORDER BY t.expires_at"
THREAD_ORDER_BY_LAST_WRITE: Final = "ORDER BY t.last_write"

# ``remove_threads``, after LOCK_THREADS took every named thread's exclusive lock (so
# this statement's snapshot follows every put of them that got in first): of the threads
# $1, those that still pass the guard ($2 last written before, $3 expired at; NULL: no
# such condition; a thread with rows but no ``threads`` row passes only no condition),
# deleted whole, set-based. Returns (thread, row kind (first key byte; NULL for the
# threads row), rows) for each kind removed.
REMOVE_THREADS: Final = """
WITH chosen AS (
    SELECT ARRAY(
        SELECT i.id FROM unnest($1::text[]) AS i(id)
        LEFT JOIN {schema}.lus_threads t ON t.thread_id = i.id
        WHERE ($2::float8 IS NULL OR t.last_write < $2::float8)
            AND ($3::float8 IS NULL OR t.expires_at <= $3::float8)
    ) AS ids
),
gone_rows AS (
    DELETE FROM {schema}.lus_store x USING chosen
    WHERE x.thread_id = ANY(chosen.ids)
    RETURNING x.thread_id, get_byte(x.key, 0) AS kind
),
gone_threads AS (
    DELETE FROM {schema}.lus_threads t USING chosen
    WHERE t.thread_id = ANY(chosen.ids)
    RETURNING t.thread_id
)
SELECT g.thread_id, g.kind, count(*) AS rows FROM (
    SELECT thread_id, kind FROM gone_rows
    UNION ALL
    SELECT thread_id, NULL FROM gone_threads
) g
GROUP BY g.thread_id, g.kind"""

# ``set_thread_ttl``: $1 thread, $2 its own ttl (0: pinned), $3 now. Only a thread with a
# checkpoint that has not expired; its expiry moves to its last write + the ttl.
SET_THREAD_TTL: Final = r"""
UPDATE {schema}.lus_threads t
SET own_ttl = $2::float8, expires_at = t.last_write + nullif($2::float8, 0)
WHERE t.thread_id = $1::text
    AND (t.expires_at IS NULL OR t.expires_at > $3::float8)
    AND EXISTS (
        SELECT 1 FROM {schema}.lus_store c
        WHERE c.thread_id = $1::text AND c.key >= '\x63'::bytea AND c.key < '\x64'::bytea)
RETURNING 1"""

# ``thread_residue``: those of $1 with any row left, in either table.
THREAD_RESIDUE: Final = """
SELECT i.id FROM unnest($1::text[]) WITH ORDINALITY AS i(id, n)
WHERE EXISTS (SELECT 1 FROM {schema}.lus_store x WHERE x.thread_id = i.id)
    OR EXISTS (SELECT 1 FROM {schema}.lus_threads t WHERE t.thread_id = i.id)
ORDER BY i.n"""


def bind(statement: str, quoted_schema: str, *, synchronous_commit: bool = True) -> str:
    """The one templating step: ``statement`` for one saver's schema and commit mode."""
    commit_mode = "" if synchronous_commit else RELAXED_COMMIT
    return statement.replace("{schema}", quoted_schema).replace("{commit_mode}", commit_mode)


class Statements:
    """Every statement, bound to one saver once, so each call reuses the same text (and
    so the same prepared statement on each connection)."""

    def __init__(self, quoted_schema: str, *, synchronous_commit: bool = True) -> None:
        def bound(statement: str) -> str:
            return bind(statement, quoted_schema, synchronous_commit=synchronous_commit)

        self.put_checkpoint = bound(PUT_CHECKPOINT)
        self.put_writes = bound(PUT_WRITES)
        self.heads = bound(SELECT_HEADS)
        self.thread_ids = bound(SELECT_THREAD_IDS)
        self.threads_of_runs = bound(SELECT_THREADS_OF_RUNS)
        self.collect = bound(COLLECT)
        self.delete_thread = bound(DELETE_THREAD)
        self.copy_thread = bound(COPY_THREAD)
        self.lock_threads = bound(LOCK_THREADS)
        self.refresh_expiry = bound(REFRESH_EXPIRY)
        self.remove_threads = bound(REMOVE_THREADS)
        self.set_thread_ttl = bound(SET_THREAD_TTL)
        self.thread_residue = bound(THREAD_RESIDUE)
        self._bound = bound
        self._read_checkpoints = bound(READ_CHECKPOINTS)
        self._pages: dict[tuple[tuple[str, ...], tuple[str, ...], str], str] = {}
        self._thread_pages: dict[tuple[tuple[str, ...], str, bool], str] = {}
        self.get_latest = self.page(LATEST_CLAUSES, BY_KEY_ORDER, "1")
        self.get_by_id = self.page(BY_KEY_CLAUSES, BY_KEY_ORDER, "1")

    def page(self, clauses: Sequence[str], order_columns: Sequence[str], limit: str) -> str:
        """READ_CHECKPOINTS for one shape of query: ``clauses`` (fixed fragments with
        numbered parameters) all hold, newest first by ``order_columns``, ``limit`` rows
        (a number or a parameter). Built once per shape."""
        shape = (tuple(clauses), tuple(order_columns), limit)
        statement = self._pages.get(shape)
        if statement is None:
            order = ", ".join(f"{column} DESC" for column in order_columns)
            statement = (
                self._read_checkpoints.replace(
                    "{where}", self._bound(" AND ".join(clauses) or "true")
                )
                .replace("{order}", order)
                .replace("{limit}", limit)
            )
            self._pages[shape] = statement
        return statement

    def thread_page(self, clauses: Sequence[str], order: str, *, stats: bool) -> str:
        """THREAD_PAGE (THREAD_PAGE_STATS with ``stats``) for one shape of query: the
        THREAD_* ``clauses`` (numbered parameters from $2; $1 is the limit) all hold,
        ``order`` one of THREAD_ORDER_BY_* or empty. Built once per shape."""
        shape = (tuple(clauses), order, stats)
        statement = self._thread_pages.get(shape)
        if statement is None:
            template = THREAD_PAGE_STATS if stats else THREAD_PAGE
            statement = self._bound(
                template.replace("{where}", " AND ".join(clauses) or "true").replace(
                    "{order}", order
                )
            )
            self._thread_pages[shape] = statement
        return statement
