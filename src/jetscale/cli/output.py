"""How the commands write: one console per stream, fitted to a terminal or unbounded for files and pipes,
and the ``--json`` documents.

On a terminal a table fits its width (rich measures it). Written to a file or a pipe nothing is cut or
wrapped: the console is ``PIPE_WIDTH`` columns wide, tables are as wide as their content, so run names,
paths and headers come out whole for ``grep``, ``cut`` and ``less``. Every command makes its consoles
here; with ``--json`` its human lines go to stderr and stdout holds one JSON document and nothing else.
"""

from __future__ import annotations

import sys

from rich.console import Console

from jetscale.report.jsondoc import dumps

__all__ = ["PIPE_WIDTH", "make_console", "print_json"]

PIPE_WIDTH = 4096  # columns of a console that writes to a file or a pipe: wider than any line we print


def make_console(*, stderr: bool = False, quiet: bool = False) -> Console:
    """A console on stdout (or stderr): the terminal's width on a terminal, ``PIPE_WIDTH`` otherwise."""
    stream = sys.stderr if stderr else sys.stdout
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        terminal = False
    return Console(stderr=stderr, highlight=False, quiet=quiet, width=None if terminal else PIPE_WIDTH)


def print_json(document: object) -> None:
    """Write ``document`` to stdout as the one JSON document of a ``--json`` run."""
    sys.stdout.write(dumps(document))
    sys.stdout.flush()
