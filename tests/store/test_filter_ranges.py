"""The range hints a filter gives backends are a superset of its matches: whatever
``CompiledFilter.matches`` keeps, each ``NumberRange`` keeps too, so a backend that
pushes them down never loses a match (the core still decides)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langgraph_unified_store.core.store_rules import NumberRange, compile_filter
from langgraph_unified_store.errors import InvalidConfigError

numbers = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, -1, 0.5, 2**53, 2**53 + 1, 1e-320, -0.0]),
)
leaves = st.one_of(
    numbers,
    st.booleans(),
    st.none(),
    st.sampled_from(["0.5", "1e3", " 7 ", "nan", "inf", "x", ""]),
    st.lists(numbers, max_size=2),
)
fields = st.sampled_from(["a", "b", "$x"])
operators = st.dictionaries(
    st.sampled_from(["$gt", "$gte", "$lt", "$lte", "$eq", "$ne"]), leaves, min_size=1, max_size=3
)
conditions = st.one_of(leaves, operators, st.dictionaries(fields, st.one_of(leaves, operators), max_size=2))
filters = st.dictionaries(fields, conditions, min_size=1, max_size=3)
values = st.dictionaries(fields, st.one_of(leaves, st.dictionaries(fields, leaves, max_size=3)), max_size=3)


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for label in path:
        if not isinstance(value, dict):
            return None
        value = value.get(label)
    return value


def _kept(hint: NumberRange, value: dict[str, Any]) -> bool:
    found = _at(value, hint.path)
    if isinstance(found, (str, bool)):
        return True
    if not isinstance(found, (int, float)):
        return False
    number = float(found)  # what a database holding this JSON reads, within a few ulps
    return (hint.low is None or number >= hint.low) and (hint.high is None or number <= hint.high)


@settings(max_examples=3000, deadline=None)
@given(filters, values)
def test_every_match_is_inside_every_range_hint(filter: dict[str, Any], value: dict[str, Any]) -> None:
    try:
        compiled = compile_filter(filter)
    except Exception:
        return  # refused filters are test_store_bad_input's
    if compiled.matches(value):
        for hint in compiled.ranges:
            assert _kept(hint, value), (hint, value)


def test_a_range_filter_gives_one_widened_hint() -> None:
    compiled = compile_filter({"score": {"$gt": 0.2, "$lte": 0.8}, "kind": "fact"})
    assert compiled.equals == {"kind": "fact"} and not compiled.exact
    (hint,) = compiled.ranges
    assert hint.path == ("score",)
    assert hint.low is not None and hint.high is not None
    assert 0.2 - 1e-6 < hint.low < 0.2 and 0.8 < hint.high < 0.8 + 1e-6


def test_nested_fields_and_numeric_equality_give_paths() -> None:
    (hint,) = compile_filter({"meta": {"rank": 3}}).ranges
    assert hint.path == ("meta", "rank")
    assert hint.low is not None and hint.high is not None and hint.low < 3 < hint.high


def test_operands_float_cannot_read_are_not_pushed_down() -> None:
    assert compile_filter({"n": {"$gt": "many"}}).ranges == ()
    assert compile_filter({"n": {"$ne": 3}}).ranges == ()
    assert compile_filter({"n": True}).ranges == ()


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=64), st.sampled_from([b'{"a": 1e400}', b"[1]", b"null", b'{"a"'])))
def test_stored_bytes_decode_to_a_dict_or_a_corrupt_data_error(data: bytes) -> None:
    from langgraph_unified_store.core.store_rules import decode_value
    from langgraph_unified_store.errors import CorruptDataError

    try:
        assert isinstance(decode_value(data, (("memories",), "k")), dict)
    except CorruptDataError as exc:
        assert "('memories',) / 'k'" in str(exc)


def test_strings_holding_nul_are_compared_in_the_core() -> None:
    compiled = compile_filter({"a": "x\x00y", "b": "plain"})
    assert compiled.equals == {"b": "plain"} and not compiled.exact
    assert compiled.matches({"a": "x\x00y", "b": "plain"})
    assert not compiled.matches({"a": "x", "b": "plain"})


def test_a_string_holding_nul_is_found_or_refused_on_every_backend(place: Any, backend_name: str) -> None:
    """Memory and Redis compare it exactly; SQLite (whose JSON functions cut it) and
    PostgreSQL (whose jsonb refuses it) refuse the put, naming why, and store nothing."""
    with place.store() as store:
        if backend_name in ("sqlite", "postgres"):
            with pytest.raises(InvalidConfigError, match="NUL"):
                store.put(("ns",), "nul", {"a": "x\x00y"})
            with pytest.raises(InvalidConfigError, match="NUL"):
                store.put(("ns",), "nul", {"deep": [{"x\x00": 1}]})
            assert store.search(("ns",)) == []
            store.put(("ns",), "text", {"a": "a backslash and u0000: \\u0000"})
            assert [i.key for i in store.search(("ns",), filter={"a": "a backslash and u0000: \\u0000"})] == ["text"]
            return
        store.put(("ns",), "nul", {"a": "x\x00y"})
        store.put(("ns",), "cut", {"a": "x"})
        assert [item.key for item in store.search(("ns",), filter={"a": "x\x00y"})] == ["nul"]
        assert [item.key for item in store.search(("ns",), filter={"a": "x"})] == ["cut"]
