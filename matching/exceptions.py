"""Errors raised by the matching engine.

The hierarchy::

    LabourmatchError
    ├── InputError                 bad user data; carries the place it was found
    │   ├── RecordError            one record (line, field, value) failed validation
    │   └── InvalidRecordsError    a file held invalid records; lists every one
    ├── TaxonomyError              reference data missing or inconsistent
    ├── ModelLoadError             the embedding model could not be loaded offline
    └── SolverError                the optimiser could not produce a shortlist
        ├── InfeasibleProblemError the constraints admit no solution
        └── SolverFailedError      the solver stopped without a usable answer

Wrong argument types raise ``TypeError`` and bad argument values ``ValueError``,
as in the standard library; these classes are for failures of the domain.
"""

from __future__ import annotations


class LabourmatchError(Exception):
    """Base class of every error the engine raises on purpose."""


class InputError(LabourmatchError):
    """Raise when user-supplied data cannot be used.

    Parameters
    ----------
    message
        What was wrong and how to fix it.
    source
        File name or other origin of the data, if known.
    """

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + message)


class RecordError(InputError):
    """Raise when one record of an input file fails validation.

    Parameters
    ----------
    message
        The rule the value broke and the values allowed.
    source
        File name or other origin of the record.
    line
        1-based line number of the record in its file (the header is line 1 in CSV).
    field
        Dotted path of the offending field, for example ``languages.0.level``.
    record_id
        External id of the record when it could be read.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
        record_id: str | None = None,
    ) -> None:
        self.reason = message
        self.line = line
        self.field = field
        self.record_id = record_id
        where = []
        if line is not None:
            where.append(f"line {line}")
        if record_id:
            where.append(f"record '{record_id}'")
        if field:
            where.append(f"field '{field}'")
        located = ", ".join(where)
        super().__init__(f"{located}: {message}" if located else message, source=source)


class InvalidRecordsError(InputError):
    """Raise when one or more records of a file are invalid.

    Parameters
    ----------
    errors
        Every record error found, in file order.
    max_listed
        How many of them the message spells out before summarising the rest.
    """

    def __init__(self, errors: list[RecordError], *, max_listed: int = 20) -> None:
        self.errors = errors
        listed = "\n".join(f"  {error}" for error in errors[:max_listed])
        more = len(errors) - max_listed
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{len(errors)} invalid record(s):\n{listed}{tail}")


class TaxonomyError(LabourmatchError):
    """Raise when the ESCO or ISCO reference data is missing or inconsistent."""


class ModelLoadError(LabourmatchError):
    """Raise when the sentence embedding model cannot be loaded from disk."""


class SolverError(LabourmatchError):
    """Base class of optimisation failures."""


class InfeasibleProblemError(SolverError):
    """Raise when the shortlist constraints admit no solution at all."""


class SolverFailedError(SolverError):
    """Raise when the solver stops without a feasible answer (time limit, error)."""
