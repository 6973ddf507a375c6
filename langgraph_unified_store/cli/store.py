"""``lus store namespaces`` and ``lus store search``: the long-term memory store of the
same URL (``create_store``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .common import FilterOption, JsonFlag, SaverOptions, UrlOption, handled
from .parsing import parse_filter, parse_namespace
from .reading import describe, store_of_flags
from .render import Output, compact, literal, plain, table

store_app = typer.Typer(help="The long-term memory store on the same URL.", no_args_is_help=True)


def namespaces(
    prefix: Annotated[str | None, typer.Option(help="Only namespaces under this one, written a/b.")] = None,
    max_depth: Annotated[int | None, typer.Option(min=1, help="Cut namespaces to this many parts.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many first.")] = 0,
    url: UrlOption = None,
    option: SaverOptions = None,
    as_json: JsonFlag = False,
) -> None:
    """The store's namespaces."""
    output = Output(as_json)
    with store_of_flags(url, option) as store, output.progress("listing namespaces"):
        found = store.list_namespaces(
            prefix=parse_namespace(prefix) or None, max_depth=max_depth, limit=limit, offset=offset
        )
    if as_json:
        output.json({"namespaces": [list(ns) for ns in found]})
        return
    rows = table(f"{len(found)} namespace(s) in {describe(url)}", "namespace", "depth")
    for ns in found:
        rows.add_row(literal("/".join(ns)), str(len(ns)))
    output.print(rows)


def _item(item: Any) -> dict[str, Any]:
    return {
        "namespace": list(item.namespace),
        "key": item.key,
        "value": plain(item.value),
        "created_at": plain(item.created_at),
        "updated_at": plain(item.updated_at),
        "score": getattr(item, "score", None),
    }


def search(
    namespace: Annotated[str, typer.Argument(help="The namespace prefix to search, written a/b ('' for all).")],
    query: Annotated[str | None, typer.Option(help="Text to search by meaning (needs the store's index).")] = None,
    filter: FilterOption = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many items.")] = 10,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many first.")] = 0,
    url: UrlOption = None,
    option: SaverOptions = None,
    as_json: JsonFlag = False,
) -> None:
    """Items under a namespace, by value filter and (with an index) by text."""
    output = Output(as_json)
    with store_of_flags(url, option) as store, output.progress("searching"):
        items = [
            _item(item)
            for item in store.search(
                parse_namespace(namespace),
                query=query,
                filter=parse_filter(filter or []) or None,
                limit=limit,
                offset=offset,
            )
        ]
    if as_json:
        output.json({"items": items})
        return
    rows = table(f"{len(items)} item(s) under {namespace or '(all)'}", "namespace", "key", "value", "updated", "score")
    for item in items:
        rows.add_row(
            literal("/".join(item["namespace"])),
            literal(item["key"]),
            literal(compact(item["value"], 200)),
            literal(str(item["updated_at"])),
            "" if item["score"] is None else f"{item['score']:.3f}",
        )
    output.print(rows)


store_app.command("namespaces")(handled(namespaces))
store_app.command("search")(handled(search))
