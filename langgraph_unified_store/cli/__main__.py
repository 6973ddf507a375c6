"""``python -m langgraph_unified_store.cli``: the same as the ``lus`` script."""

from .app import main

main()
