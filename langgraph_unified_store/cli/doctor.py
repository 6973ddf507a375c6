"""``lus doctor``: the saver's and the store's health reports; exit 1 unless both are ok."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..core.health import DEFAULT_HEALTH_TIMEOUT
from .common import EXIT_FAILURE, JsonFlag, KeyEnvOption, SaverOptions, UrlOption, handled
from .parsing import parse_options
from .reading import describe, key_from_env, opened_saver, opened_store
from .render import Output, literal, table


def _report_table(title: str, report: dict[str, Any]) -> Any:
    rows = table(title, "", "", show_header=False)
    status = literal("ok", "bold green") if report["ok"] else literal("NOT OK", "bold red")
    rows.add_row("status", status)
    schema = report["schema_version"]
    expected = report["expected_schema_version"]
    fields = [
        ("backend", report["backend"]),
        ("reachable", "yes" if report["reachable"] else "no"),
        ("location", report["location"]),
        ("round trip", None if report["round_trip_ms"] is None else f"{report['round_trip_ms']:.2f} ms"),
        ("server", report["server_version"]),
        ("schema", None if schema is None else f"{schema} (this code expects {expected})"),
        ("pending", ", ".join(str(p) for p in report["pending_migrations"]) or None),
        ("modules", None if report["modules"] is None else ", ".join(report["modules"]) or "(none)"),
        ("cluster", None if report["cluster"] is None else ("yes" if report["cluster"] else "no")),
    ]
    for name, value in fields:
        if value is not None:
            rows.add_row(name, literal(str(value)))
    for problem in report["problems"]:
        rows.add_row(literal("problem", "red"), literal(problem, "red"))
    for note in report["notes"]:
        rows.add_row("note", literal(note))
    return rows


def doctor(
    target: Annotated[str | None, typer.Argument(metavar="[URL]", help="The URL to check (or --url).")] = None,
    url: UrlOption = None,
    option: SaverOptions = None,
    key_env: KeyEnvOption = None,
    timeout: Annotated[float, typer.Option(min=0.001, help="Seconds to wait for the storage.")] = DEFAULT_HEALTH_TIMEOUT,
    as_json: JsonFlag = False,
) -> None:
    """Check that the storage answers and its schema is this code's: the saver's and the
    store's health reports; exit 1 when either is not ok."""
    output = Output(as_json)
    url = target or url
    options = parse_options(option or [])
    with output.progress("checking"):
        with opened_saver(url, options, key=key_from_env(key_env)) as saver:
            saver_report = saver.health(timeout=timeout).as_dict()
        with opened_store(url, options) as store:
            store_report = store.health(timeout=timeout).as_dict()
    ok = bool(saver_report["ok"] and store_report["ok"])
    if as_json:
        output.json({"ok": ok, "saver": saver_report, "store": store_report})
    else:
        output.print(_report_table(f"saver on {describe(url)}", saver_report))
        output.print(_report_table("store", store_report))
    if not ok:
        raise typer.Exit(EXIT_FAILURE)


def register(app: typer.Typer) -> None:
    app.command("doctor")(handled(doctor))
