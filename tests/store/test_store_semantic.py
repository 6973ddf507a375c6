"""Semantic search on each backend ranks and scores as LangGraph's ``InMemoryStore`` does,
on the same data and the same deterministic fake embedding (nothing downloads).

Both stores get the same items in the same order, sorted by namespace and key, and our
clock stands still: then our unranked order (newest first, then namespace and key) and
``InMemoryStore``'s insertion order are the same, so even the scoreless fill (items
without vectors, after the scored ones) must come out identical.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from langgraph.store.memory import InMemoryStore

from .conftest import DIMS, FakeClock, Place, fake_embed

TEXT_INDEX: dict[str, Any] = {"dims": DIMS, "embed": fake_embed, "fields": ["text"]}
MULTI_INDEX: dict[str, Any] = {"dims": DIMS, "embed": fake_embed, "fields": ["text", "meta.title", "tags[*]"]}


def _items() -> list[tuple[tuple[str, ...], str, dict[str, Any], Any]]:
    """(namespace, key, value, index) in sorted order; index None: the store's fields."""
    made: list[tuple[tuple[str, ...], str, dict[str, Any], Any]] = []
    for group in ("a", "b"):
        for n in range(8):
            value: dict[str, Any] = {
                "text": f"note {group}{n} about {'cats' if n % 2 else 'dogs'} and {n * 7 % 5}",
                "kind": "x" if n % 3 else "y",
                "n": n,
                "meta": {"title": f"title {group}-{n}"},
                "tags": [f"tag{n}", f"tag{group}{n}"],
            }
            index: Any = None
            if n == 5:
                del value["text"]  # no text field: scoreless under TEXT_INDEX
            if n == 6:
                index = False  # not indexed: scoreless
            if n == 7:
                index = ["meta.title"]  # only the title, whatever the store's fields
            made.append((("docs", group), f"k{n:02d}", value, index))
    return sorted(made, key=lambda item: (".".join(item[0]), item[1]))


def _fill(store: Any) -> None:
    for namespace, key, value, index in _items():
        if index is None:
            store.put(namespace, key, value)
        else:
            store.put(namespace, key, value, index=index)


def _rows(found: list[Any]) -> list[tuple[tuple[str, ...], str, bytes, float | None]]:
    return [
        (tuple(i.namespace), i.key, orjson.dumps(i.value, option=orjson.OPT_SORT_KEYS), i.score)
        for i in found
    ]


def _same(got: list[Any], want: list[Any]) -> None:
    got_rows, want_rows = _rows(got), _rows(want)
    assert [r[:3] for r in got_rows] == [r[:3] for r in want_rows]
    for (*_, got_score), (*_, want_score) in zip(got_rows, want_rows, strict=True):
        if want_score is None:
            assert got_score is None
        else:
            assert got_score == pytest.approx(want_score, abs=1e-9)


SEARCHES: list[dict[str, Any]] = [
    {"query": "cats"},
    {"query": "dogs", "limit": 3},
    {"query": "dogs", "limit": 3, "offset": 2},
    {"query": "note a3", "limit": 40},  # every item: scored ones, then the scoreless fill
    {"query": "note a3", "limit": 16, "offset": 10},
    {"query": "cats", "filter": {"kind": "x"}, "limit": 20},
    {"query": "cats", "filter": {"kind": {"$eq": "y"}}, "limit": 20},
    {"query": "cats", "filter": {"n": {"$gte": 3}, "kind": "x"}, "limit": 5},
    {"query": "cats", "filter": {"meta": {"title": "title b-2"}}},
    {"query": "cats", "filter": {"kind": "none such"}},
    {"query": "title b-7", "prefix": ("docs", "b"), "limit": 20},
]


@pytest.mark.parametrize("index", [TEXT_INDEX, MULTI_INDEX], ids=["one-field", "three-fields"])
def test_ranking_and_scores_match_the_reference(place: Place, clock: FakeClock, index: dict[str, Any]) -> None:
    reference = InMemoryStore(index=index)  # type: ignore[arg-type]
    _fill(reference)
    with place.store(index=index, clock=clock) as store:
        _fill(store)
        for search in SEARCHES:
            options = dict(search)
            prefix = options.pop("prefix", ("docs",))
            got = store.search(prefix, **options)
            want = reference.search(prefix, **options)
            assert want or search["filter"] == {"kind": "none such"}, search
            _same(got, want)
        # Without a query, an indexed store lists unranked: no scores.
        assert all(i.score is None for i in store.search(("docs",), limit=40))


async def test_async_ranking_matches_the_reference(place: Place, clock: FakeClock) -> None:
    reference = InMemoryStore(index=MULTI_INDEX)  # type: ignore[arg-type]
    for namespace, key, value, index in _items():
        await reference.aput(namespace, key, value, index=index)
    async with place.store(index=MULTI_INDEX, clock=clock) as store:
        for namespace, key, value, index in _items():
            await store.aput(namespace, key, value, index=index)
        for search in SEARCHES:
            options = dict(search)
            prefix = options.pop("prefix", ("docs",))
            _same(await store.asearch(prefix, **options), await reference.asearch(prefix, **options))


def test_a_put_replaces_the_vectors(place: Place, clock: FakeClock) -> None:
    """Re-putting an item with ``index=False`` leaves it scoreless; a re-put with new text
    scores by the new text. (``InMemoryStore`` keeps the old vectors: not compared.)"""
    with place.store(index=TEXT_INDEX, clock=clock) as store:
        store.put(("d",), "one", {"text": "alpha"})
        store.put(("d",), "two", {"text": "beta"})
        assert [i.score is not None for i in store.search(("d",), query="alpha")] == [True, True]
        store.put(("d",), "one", {"text": "alpha"}, index=False)
        found = {i.key: i.score for i in store.search(("d",), query="alpha")}
        assert found["one"] is None and found["two"] is not None
        store.put(("d",), "one", {"text": "gamma"})
        reference = InMemoryStore(index=TEXT_INDEX)  # type: ignore[arg-type]
        reference.put(("d",), "one", {"text": "gamma"})
        reference.put(("d",), "two", {"text": "beta"})
        _same(
            sorted(store.search(("d",), query="gamma"), key=lambda i: i.key),
            sorted(reference.search(("d",), query="gamma"), key=lambda i: i.key),
        )
        # A delete takes the vectors too: a new put of the key without text is scoreless.
        store.delete(("d",), "two")
        store.put(("d",), "two", {"other": "beta"})
        assert {i.key: i.score is None for i in store.search(("d",), query="beta")} == {"one": False, "two": True}
