"""The rules of what an operator types, on generated cases (hypothesis)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from langgraph_unified_store.cli.parsing import (
    DURATION_UNITS,
    UsageProblem,
    parse_duration,
    parse_filter,
    parse_namespace,
    parse_when,
    redact,
)
from langgraph_unified_store.cli.render import clean, plain

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
parts = st.lists(st.tuples(st.integers(1, 10_000), st.sampled_from(sorted(DURATION_UNITS))), min_size=1, max_size=4)


@given(parts)
def test_a_duration_is_the_sum_of_its_parts(chosen: list[tuple[int, str]]) -> None:
    text = "".join(f"{number}{unit}" for number, unit in chosen)
    expected = sum(number * DURATION_UNITS[unit] for number, unit in chosen)
    assert parse_duration(text, "--x") == timedelta(seconds=expected)
    assert parse_when(text, "--x", NOW) == NOW - timedelta(seconds=expected)


@given(st.text(max_size=12))
def test_anything_else_is_refused_by_name(text: str) -> None:
    if re.fullmatch(r"(?:\d+(?:\.\d+)?[smhdw])+", text.strip().lower()):
        return
    with pytest.raises(UsageProblem, match="--older-than"):
        parse_duration(text, "--older-than")


@given(st.datetimes(timezones=st.just(UTC)))
def test_an_iso_time_reads_back_as_itself(moment: datetime) -> None:
    assert parse_when(moment.isoformat(), "--x", NOW) == moment
    naive = moment.replace(tzinfo=None)
    assert parse_when(naive.isoformat(), "--x", NOW) == moment  # naive is UTC


keys = st.text(st.characters(blacklist_characters="=:", blacklist_categories=("Cs",)), min_size=1, max_size=10)
scalars = st.one_of(st.integers(-(2**53), 2**53), st.booleans(), st.none(), st.text(max_size=10), st.floats(allow_nan=False, allow_infinity=False))


@given(keys, st.text(max_size=10))
def test_key_equals_value_is_a_string(key: str, value: str) -> None:
    assert parse_filter([f"{key}={value}"]) == {key: value}


@given(keys, scalars)
def test_key_colon_equals_json_is_that_scalar(key: str, value: object) -> None:
    assert parse_filter([f"{key}:={orjson.dumps(value).decode()}"]) == {key: value}


@pytest.mark.parametrize("bad", ["novalue", "=v", "k:={", "k:=[1]", 'k:={"a":1}'])
def test_bad_filters_are_usage_problems(bad: str) -> None:
    with pytest.raises(UsageProblem):
        parse_filter([bad])


@given(st.lists(st.text(st.characters(blacklist_characters="/.", blacklist_categories=("Cs",)), min_size=1, max_size=5), max_size=4))
def test_a_namespace_written_with_slashes(namespace: list[str]) -> None:
    assert parse_namespace("/".join(namespace)) == tuple(namespace)


secrets = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Cc"), blacklist_characters="/"), min_size=1, max_size=20)
users = st.text(st.characters(whitelist_categories=("Ll", "Nd")), max_size=8)


@given(st.sampled_from(["postgresql", "redis", "rediss", "postgres"]), users, secrets)
def test_no_password_survives_redaction(scheme: str, user: str, secret: str) -> None:
    url = f"{scheme}://{user}:{secret}@db.example:5432/app"
    expected = f"{scheme}://{user}:***@db.example:5432/app"
    assert redact(f"cannot connect to {url}: refused") == f"cannot connect to {expected}: refused"
    assert redact(f"host=db password={secret.split()[0]} user=x").startswith("host=db password=***")


@given(st.text())
def test_shown_text_has_no_control_character_but_newline_and_tab(text: str) -> None:
    shown = clean(text)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", shown)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.binary(), st.datetimes(timezones=st.just(UTC))),
    lambda inner: st.one_of(st.lists(inner), st.dictionaries(st.text(), inner), st.frozensets(st.integers())),
    max_leaves=20,
)


@given(json_values)
def test_plain_makes_every_value_json(value: object) -> None:
    orjson.dumps(plain(value))
