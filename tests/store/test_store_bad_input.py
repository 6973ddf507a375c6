"""Bad input to the store on each backend: a clear error naming what was wrong, raised
before anything is written (each test reads the whole store back afterwards), and
filter keys and values built as injection payloads (CVE-2025-8709, CVE-2025-64104:
filter keys spliced into SQL or JSON paths) answered exactly as ``InMemoryStore``
answers them, with nothing written."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from langgraph.store.base import GetOp, InvalidNamespaceError, ListNamespacesOp, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore, _compare_values

from langgraph_unified_store.core.store import EmbeddingError
from langgraph_unified_store.core.store_rules import StoreNamespaceError
from langgraph_unified_store.errors import InvalidConfigError

from .conftest import DIMS, FakeClock, Place, fake_embed

SENTINEL = (("keep",), "me", {"v": 1})


def _everything(store: Any) -> set[tuple[tuple[str, ...], str, bytes]]:
    return {
        (tuple(i.namespace), i.key, orjson.dumps(i.value, option=orjson.OPT_SORT_KEYS))
        for i in store.search((), limit=10_000)
    }


def _fresh(place: Place, **options: Any) -> Any:
    store = place.store(**options)
    store.put(*SENTINEL)
    return store


def _unchanged(store: Any) -> None:
    namespace, key, value = SENTINEL
    assert _everything(store) == {(namespace, key, orjson.dumps(value))}
    assert store.list_namespaces() == [namespace]


BAD_NAMESPACES: list[tuple[Any, str]] = [
    ((), "empty"),
    (("a.b",), "'.'"),
    (("ok", "a.b"), "'.'"),
    (("a", 1), "not a string"),
    (("a", None), "not a string"),
    (("",), "empty label"),
    (("a", ""), "empty label"),
    (("langgraph", "x"), "reserved"),
    (("a\x00",), "NUL"),
    (["a", "b"], "tuple"),
]


@pytest.mark.parametrize(("namespace", "message"), BAD_NAMESPACES)
def test_bad_namespaces_are_refused(place: Place, namespace: Any, message: str) -> None:
    with _fresh(place) as store:
        for op in (
            PutOp(namespace, "k", {"v": 2}),
            GetOp(namespace, "k"),
            PutOp(namespace, "k", None),  # a delete
        ):
            with pytest.raises(StoreNamespaceError, match=message) as raised:
                store.batch([PutOp(("fine",), "k", {"v": 3}), op])
            # Either except catches it: LangGraph's and ours.
            assert isinstance(raised.value, InvalidNamespaceError)
            assert isinstance(raised.value, InvalidConfigError)
        if message in ("'.'", "not a string", "NUL", "tuple"):  # a search prefix may be empty
            with pytest.raises(StoreNamespaceError, match=message):
                store.batch([SearchOp(namespace)])
        # The public methods: LangGraph's own check, or ours; both are InvalidNamespaceError.
        if isinstance(namespace, tuple):
            with pytest.raises(InvalidNamespaceError):
                store.put(namespace, "k", {"v": 2})
        _unchanged(store)


async def test_bad_namespaces_async(place: Place) -> None:
    async with place.store() as store:
        await store.aput(*SENTINEL)
        for namespace, message in BAD_NAMESPACES:
            with pytest.raises(StoreNamespaceError, match=message):
                await store.abatch([PutOp(("fine",), "k", {"v": 3}), PutOp(namespace, "k", {"v": 2})])
        assert [tuple(i.namespace) for i in await store.asearch((), limit=100)] == [SENTINEL[0]]


class Opaque:
    pass


BAD_VALUES: list[tuple[Any, str]] = [
    ([1, 2], "JSON object"),
    ("text", "JSON object"),
    (42, "JSON object"),
    ({"a": Opaque()}, "not JSON"),
    ({"a": {1, 2}}, "not JSON"),
    ({1: "x"}, "not JSON"),
    ({"a": {"b": 2**64}}, "not JSON"),
    ({"a": float("nan")}, "not JSON"),
    ({"a": [1, float("inf")]}, "not JSON"),
    ({"a": {"b": -math.inf}}, "not JSON"),
]


@pytest.mark.parametrize(("value", "message"), BAD_VALUES)
def test_bad_values_write_nothing(place: Place, value: Any, message: str) -> None:
    with _fresh(place) as store:
        with pytest.raises(InvalidConfigError, match=message):
            store.put(("v",), "k", value)
        with pytest.raises(InvalidConfigError, match=message):
            store.batch([PutOp(("v",), "good", {"ok": True}), PutOp(("v",), "k", value)])
        _unchanged(store)


@pytest.mark.parametrize(
    ("key", "message"),
    [(1, "key must be a string"), (None, "key must be a string"), ("k\x00", "NUL"), ("\ud800", "surrogate")],
)
def test_bad_keys_write_nothing(place: Place, key: Any, message: str) -> None:
    with _fresh(place) as store:
        with pytest.raises(InvalidConfigError, match=message):
            store.batch([PutOp(("v",), "good", {"ok": True}), PutOp(("v",), key, {"v": 1})])
        with pytest.raises(InvalidConfigError, match=message):
            store.batch([GetOp(("v",), key)])
        _unchanged(store)


def _embedder(kind: str) -> Any:
    def embed(texts: Sequence[str]) -> list[list[float]]:
        if any("bad" in t for t in texts):
            if kind == "raises":
                raise RuntimeError("the model is down")
            if kind == "short":
                return [v[:-1] for v in fake_embed(texts)]
            if kind == "count":
                return fake_embed(texts)[1:]
            if kind == "nan":
                return [[math.nan] * DIMS for _ in texts]
            if kind == "strings":
                return [["0.5"] * DIMS for _ in texts]
        return fake_embed(texts)

    return embed


EMBEDDING_FAILURES = {
    "raises": "RuntimeError: the model is down",
    "short": f"15 values, not {DIMS}",
    "count": "for 2 text",
    "nan": "finite",
    "strings": "finite numbers",
}


@pytest.mark.parametrize(("kind", "message"), EMBEDDING_FAILURES.items())
def test_embedding_failures_write_nothing(place: Place, kind: str, message: str) -> None:
    index = {"dims": DIMS, "embed": _embedder(kind), "fields": ["text"]}
    with _fresh(place, index=index) as store:
        with pytest.raises(EmbeddingError, match=message):
            store.batch([PutOp(("e",), "good", {"text": "fine"}), PutOp(("e",), "k", {"text": "bad one"})])
        with pytest.raises(EmbeddingError, match="nothing was written"):
            store.put(("e",), "k", {"text": "bad"})
        if kind != "count":  # a query is embedded alone
            with pytest.raises(EmbeddingError):
                store.search(("e",), query="bad query")
        _unchanged(store)


@pytest.mark.parametrize("kind", EMBEDDING_FAILURES)
async def test_async_embedding_failures_write_nothing(place: Place, kind: str) -> None:
    index = {"dims": DIMS, "embed": _embedder(kind), "fields": ["text"]}
    async with place.store(index=index) as store:
        await store.aput(*SENTINEL)
        with pytest.raises(EmbeddingError, match=EMBEDDING_FAILURES[kind]):
            await store.abatch([PutOp(("e",), "good", {"text": "fine"}), PutOp(("e",), "k", {"text": "bad one"})])
        assert [i.key for i in await store.asearch((), limit=100)] == [SENTINEL[1]]


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        ({"a": {"$regex": "x.*"}}, "unknown filter operator '\\$regex' at 'a.\\$regex'"),
        ({"a": {"$in": [1, 2]}}, "unknown filter operator '\\$in'"),
        ({"a": {"b": {"$exists": True}}}, "'\\$exists' at 'a.b.\\$exists'"),
        ({"a": {"$gt": 1, "b": 2}}, "field among operators 'b' at 'a.b'"),
        ({"a": float("nan")}, "finite"),
        ({1: "x"}, "filter keys must be strings"),
        ({"a\x00": "x"}, "NUL"),
        (["a"], "filter must be a mapping"),
    ],
)
def test_bad_filters_are_refused(place: Place, filter: Any, message: str) -> None:
    with _fresh(place) as store:
        with pytest.raises(InvalidConfigError, match=message):
            store.search(("keep",), filter=filter)
        _unchanged(store)


@pytest.mark.parametrize(
    ("op", "message"),
    [
        (SearchOp(("keep",), limit=-1), "limit"),
        (SearchOp(("keep",), offset=-2), "offset"),
        (SearchOp(("keep",), limit=True), "limit"),
        (SearchOp(("keep",), query=5), "query"),  # type: ignore[arg-type]
        (ListNamespacesOp(limit=-1), "limit"),
        (ListNamespacesOp(max_depth=0), "max_depth"),
        (PutOp(("keep",), "k", {"v": 1}, index="text"), "index"),  # type: ignore[arg-type]
    ],
)
def test_bad_paging_and_options(place: Place, op: Any, message: str) -> None:
    with _fresh(place) as store:
        with pytest.raises(InvalidConfigError, match=message):
            store.batch([PutOp(("keep",), "other", {"v": 2}), op])
        _unchanged(store)


PAYLOADS = [
    "a') OR 1=1 --",
    "$.x",
    'x" OR "1"="1',
    "a\\'b",
    "a'); DELETE FROM memory_items; --",
    "a'); DELETE FROM lus_memory_items; --",
    "') UNION SELECT key, value FROM memory_items --",
    "$",
    "$[0]",
    "a.b",
    "a[0]",
    "*",
    "'",
    '"',
    "\\",
    "%",
    "_",
    "{memory}",
    "x:{cache}:y",
    "__proto__",
    "a b",
    "é",
]


def _payload_items() -> list[tuple[tuple[str, ...], str, dict[str, Any]]]:
    made = []
    for n, payload in enumerate(PAYLOADS):
        label = payload.replace(".", "") or "dot"
        made.append((("p", label), payload, {payload: "v", "n": n, "kind": payload}))
        made.append((("p", "plain"), f"k{n:02d}", {"a": payload, "b": {payload: n}, payload: n}))
    made.append((("p", "plain"), "x", {"x": "v", "a": "v", "b": "v", "$": {"x": "v"}}))
    return made


def _filters() -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []
    for n, payload in enumerate(PAYLOADS):
        made += [
            {payload: "v"},
            {payload: {"$eq": "v"}},
            {payload: {"$ne": "v"}},
            {payload: n},
            {payload: {"$gte": n}},
            {"a": payload},
            {"kind": payload, payload: "v"},
            *([{"b": {payload: n}}] if not payload.startswith("$") else []),  # else an operator: below
            {payload: "v' OR '1'='1"},
        ]
    return made


def _reference_search(reference: InMemoryStore, prefix: tuple[str, ...], filter: dict[str, Any]) -> list[Any]:
    """InMemoryStore's answer; where its range operators raise on a non-number, its own
    comparison item by item, such an item being no match (our documented rule)."""
    try:
        return reference.search(prefix, filter=filter, limit=1000)
    except (ValueError, TypeError):
        every = reference.search(prefix, limit=1000)
        return [i for i in every if _matches(i.value, filter)]


def _matches(value: dict[str, Any], filter: dict[str, Any]) -> bool:
    try:
        return all(_compare_values(value.get(k), v) for k, v in filter.items())
    except (ValueError, TypeError):
        return False


def test_injection_payloads_answer_as_the_reference(place: Place, clock: FakeClock) -> None:
    reference = InMemoryStore()
    with place.store(clock=clock) as store:
        for namespace, key, value in _payload_items():
            store.put(namespace, key, value)
            reference.put(namespace, key, value)
        before = _everything(store)
        assert before == _everything(reference)
        for filter in _filters():
            for prefix in (("p",), ("p", "plain")):
                got = store.search(prefix, filter=filter, limit=1000)
                want = _reference_search(reference, prefix, filter)
                assert {(tuple(i.namespace), i.key) for i in got} == {
                    (tuple(i.namespace), i.key) for i in want
                }, filter
                # The clock stands still: our order is namespace text, then key.
                paged = store.search(prefix, filter=filter, limit=2, offset=1)
                ordered = sorted(want, key=lambda i: (".".join(i.namespace), i.key))[1:3]
                assert [(tuple(i.namespace), i.key) for i in paged] == [
                    (tuple(i.namespace), i.key) for i in ordered
                ], filter
        for payload in PAYLOADS:
            if payload.startswith("$"):  # below a field, a '$' key is an operator
                with pytest.raises(InvalidConfigError, match="unknown filter operator"):
                    store.search(("p",), filter={"b": {payload: 1}})
        for namespace, key, _ in _payload_items():
            assert store.get(namespace, key) is not None
        assert _everything(store) == before
        assert store.list_namespaces() == reference.list_namespaces()
        assert store.list_namespaces(suffix=("plain",)) == [("p", "plain")]
