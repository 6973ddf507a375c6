"""The ``lus`` command line (``cli.app``); needs the ``typer`` and ``rich`` dependencies."""
