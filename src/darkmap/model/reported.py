"""The operation-figures CSV: the totals past operations reported (arrests, drugs, cash,
firearms, each with its sources), as ``../shared/data/operations/jcode-operations.csv``
holds them. ``darkmap ops import-reported`` reads it (:mod:`darkmap.ops.totals`), not
``darkmap ingest``: it is no evidence of a market. :data:`OPERATION_FIGURES` declares
that, so that ``darkmap ingest`` of such a file names the command instead of leaving the
analyst with "not recognised" (:func:`darkmap.plugins.read_elsewhere`).

A file is taken for one by its header, not its name: an ``operation`` column and at least
two of the figure columns.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

__all__ = ["FIGURE_COLUMNS", "OPERATION_COLUMN", "OPERATION_FIGURES", "OperationFigures"]

OPERATION_COLUMN = "operation"
"""The column naming the operation (the one column the importer requires)."""
FIGURE_COLUMNS = ("total_arrests", "arrests_by_country", "seized_cash_and_crypto",
                  "drugs_kg", "firearms")
"""The figure columns :func:`darkmap.ops.totals.parse_row` reads (besides ``other`` and
``source_urls``)."""
_HEADER_BYTES = 4096


@dataclass(frozen=True)
class OperationFigures:
    """Recognises an operation-figures CSV by its header; names the command reading it
    (a :class:`darkmap.plugins.ReadElsewhere`)."""

    name: str = "operation-figures"
    what: str = "reported figures of past operations"
    command: str = "darkmap ops import-reported FILE --as USER"

    def recognises(self, head: bytes) -> bool:
        """True when the first line of ``head`` (UTF-8) is a header with the operation
        column and at least two figure columns."""
        try:
            text = head[:_HEADER_BYTES].decode("utf-8-sig")
        except UnicodeDecodeError:
            return False
        line = text.split("\n", 1)[0].rstrip("\r")
        try:
            names = {n.strip().lower() for n in next(csv.reader([line]), [])}
        except csv.Error:
            return False
        return OPERATION_COLUMN in names and len(names & set(FIGURE_COLUMNS)) >= 2


OPERATION_FIGURES = OperationFigures()
"""The built-in declaration."""
