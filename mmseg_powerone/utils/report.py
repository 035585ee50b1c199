"""The one writer of the Markdown tables the tools print and save."""
from typing import Iterable, Sequence


def table_row(cells: Iterable) -> str:
    """``| a | b |``; an empty cell is ``| |``."""
    return '|' + '|'.join(f' {c} ' if str(c) else ' ' for c in cells) + '|'


def markdown_table(header: Sequence, rows: Iterable[Sequence]) -> str:
    """A Markdown table: the header, the separator, a line per row (cells
    are formatted with ``str``). No trailing newline."""
    header = list(header)
    lines = [table_row(header), '|' + '---|' * len(header)]
    lines += [table_row(row) for row in rows]
    return '\n'.join(lines)
