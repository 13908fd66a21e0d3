"""ESCO occupations and skills and ISCO-08 groups, loaded from the fixture files.

The fixtures are built by ``python scripts/build_fixtures.py`` from the ESCO
v1.1.1 CSV release and kept in ``fixtures/esco/`` as gzip-compressed CSVs:

- ``occupations.csv.gz``: uri, isco_code, preferred_label, alt_labels,
  hidden_labels, regulated
- ``skills.csv.gz``: uri, preferred_label, alt_labels, hidden_labels,
  skill_type, reuse_level
- ``occupation_skill_relations.csv.gz``: occupation_uri, skill_uri,
  relation_type (essential or optional)
- ``isco_groups.csv.gz``: code, level, title

List cells are joined with ``|``. A :class:`Taxonomy` is immutable after
loading, so one instance can be shared by every caller in a process.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from matching.exceptions import TaxonomyError

logger = logging.getLogger(__name__)

TAXONOMY_VERSION = "esco-1.1.1"

# The package is installed in editable mode, so the fixtures sit next to it in
# the repository root.
DEFAULT_FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"

REBUILD_COMMAND = "python scripts/build_fixtures.py"

OCCUPATIONS_FILE = "esco/occupations.csv.gz"
SKILLS_FILE = "esco/skills.csv.gz"
RELATIONS_FILE = "esco/occupation_skill_relations.csv.gz"
ISCO_GROUPS_FILE = "esco/isco_groups.csv.gz"
MANIFEST_FILE = "MANIFEST.json"

ESCO_OCCUPATION_PREFIX = "http://data.europa.eu/esco/occupation/"
ESCO_SKILL_PREFIX = "http://data.europa.eu/esco/skill/"

_LIST_SEPARATOR = "|"
_EMPTY: tuple[str, ...] = ()


@dataclass(frozen=True)
class Occupation:
    """An ESCO occupation.

    Attributes
    ----------
    uri
        ESCO concept URI.
    preferred_label
        English preferred label.
    isco_code
        4-digit ISCO-08 unit group, leading zeros kept (for example ``"0110"``).
    alt_labels, hidden_labels
        English alternative and hidden labels, without the preferred label.
    regulated
        True when ESCO marks the profession regulated in at least one EU member
        state. ESCO leaves some notes empty, and those count as not regulated.
    """

    uri: str
    preferred_label: str
    isco_code: str
    alt_labels: tuple[str, ...]
    hidden_labels: tuple[str, ...]
    regulated: bool


@dataclass(frozen=True)
class Skill:
    """An ESCO skill, competence or knowledge concept.

    Attributes
    ----------
    uri
        ESCO concept URI.
    preferred_label
        English preferred label.
    alt_labels, hidden_labels
        English alternative and hidden labels, without the preferred label.
    skill_type
        ``"skill/competence"``, ``"knowledge"`` or ``""`` (a few v1.1.1 concepts
        have none).
    reuse_level
        ``"transversal"``, ``"cross-sector"``, ``"sector-specific"``,
        ``"occupation-specific"`` or ``""``.
    """

    uri: str
    preferred_label: str
    alt_labels: tuple[str, ...]
    hidden_labels: tuple[str, ...]
    skill_type: str
    reuse_level: str


class Taxonomy:
    """ESCO occupations, skills and their relations, and the ISCO-08 groups.

    Build it with :func:`load_taxonomy`. The mappings are read-only views.

    Parameters
    ----------
    version
        Taxonomy release, for example ``"esco-1.1.1"``.
    occupations
        Occupations by URI.
    skills
        Skills by URI.
    isco_groups
        ISCO-08 group titles by code (1 to 4 digits).
    essential
        Essential skill URIs per occupation URI.
    optional
        Optional skill URIs per occupation URI.
    """

    def __init__(
        self,
        version: str,
        occupations: Mapping[str, Occupation],
        skills: Mapping[str, Skill],
        isco_groups: Mapping[str, str],
        essential: Mapping[str, tuple[str, ...]],
        optional: Mapping[str, tuple[str, ...]],
    ) -> None:
        self.version = version
        self.occupations: Mapping[str, Occupation] = MappingProxyType(dict(occupations))
        self.skills: Mapping[str, Skill] = MappingProxyType(dict(skills))
        self.isco_groups: Mapping[str, str] = MappingProxyType(dict(isco_groups))
        self._essential = dict(essential)
        self._optional = dict(optional)
        self._occupations_by_isco = _index_by_isco_prefix(self.occupations.values())

    def __repr__(self) -> str:
        return (
            f"Taxonomy(version={self.version!r}, occupations={len(self.occupations)}, "
            f"skills={len(self.skills)}, isco_groups={len(self.isco_groups)})"
        )

    def occupation(self, uri: str) -> Occupation:
        """Return the occupation with ESCO URI ``uri``.

        Raises
        ------
        KeyError
            If no occupation has that URI.
        """
        try:
            return self.occupations[uri]
        except KeyError:
            raise KeyError(
                f"occupation {uri!r} is not in taxonomy {self.version}; "
                "expected an ESCO occupation URI starting with "
                f"{ESCO_OCCUPATION_PREFIX!r}"
            ) from None

    def skill(self, uri: str) -> Skill:
        """Return the skill with ESCO URI ``uri``.

        Raises
        ------
        KeyError
            If no skill has that URI.
        """
        try:
            return self.skills[uri]
        except KeyError:
            raise KeyError(
                f"skill {uri!r} is not in taxonomy {self.version}; "
                f"expected an ESCO skill URI starting with {ESCO_SKILL_PREFIX!r}"
            ) from None

    def essential_skills(self, occupation_uri: str) -> tuple[str, ...]:
        """Return the URIs of the skills ESCO marks essential for an occupation.

        Parameters
        ----------
        occupation_uri
            ESCO occupation URI.

        Returns
        -------
        tuple of str
            Skill URIs, sorted; empty when ESCO lists none.

        Raises
        ------
        KeyError
            If the occupation is unknown.
        """
        self.occupation(occupation_uri)
        return self._essential.get(occupation_uri, _EMPTY)

    def optional_skills(self, occupation_uri: str) -> tuple[str, ...]:
        """Return the URIs of the skills ESCO marks optional for an occupation.

        Parameters
        ----------
        occupation_uri
            ESCO occupation URI.

        Returns
        -------
        tuple of str
            Skill URIs, sorted; empty when ESCO lists none.

        Raises
        ------
        KeyError
            If the occupation is unknown.
        """
        self.occupation(occupation_uri)
        return self._optional.get(occupation_uri, _EMPTY)

    def occupations_in_isco(self, code_prefix: str) -> tuple[str, ...]:
        """Return the URIs of the occupations whose ISCO-08 code starts with a prefix.

        Parameters
        ----------
        code_prefix
            1 to 4 ISCO-08 digits: a major, sub-major, minor or unit group code.

        Returns
        -------
        tuple of str
            Occupation URIs sorted ascending; empty when no occupation matches.

        Raises
        ------
        TypeError
            If ``code_prefix`` is not a string.
        ValueError
            If ``code_prefix`` is not 1 to 4 digits.
        """
        if not isinstance(code_prefix, str):
            raise TypeError(
                f"code_prefix must be a str, not {type(code_prefix).__name__}; "
                "pass ISCO codes as strings so leading zeros survive"
            )
        if not (1 <= len(code_prefix) <= 4 and code_prefix.isdigit()):
            raise ValueError(
                f"code_prefix {code_prefix!r} is invalid: an ISCO-08 code prefix "
                "is 1 to 4 digits"
            )
        return self._occupations_by_isco.get(code_prefix, _EMPTY)

    def is_isco_code(self, code: str) -> bool:
        """Return whether ``code`` is an ISCO-08 group code of any level.

        Parameters
        ----------
        code
            Candidate code such as ``"2"``, ``"22"``, ``"222"`` or ``"2221"``.

        Raises
        ------
        TypeError
            If ``code`` is not a string.
        """
        if not isinstance(code, str):
            raise TypeError(
                f"code must be a str, not {type(code).__name__}; "
                "pass ISCO codes as strings so leading zeros survive"
            )
        return code in self.isco_groups


def load_taxonomy(directory: Path | None = None) -> Taxonomy:
    """Load the ESCO and ISCO-08 fixture files into a :class:`Taxonomy`.

    Parameters
    ----------
    directory
        Fixture folder containing ``esco/``; :data:`DEFAULT_FIXTURES_DIR` when None.

    Returns
    -------
    Taxonomy

    Raises
    ------
    TaxonomyError
        If a fixture file is missing or malformed, if ``MANIFEST.json`` names
        another taxonomy version, or if a relation points at an unknown concept.
        The message names the file and the rebuild command.

    Notes
    -----
    Reads about 141,000 CSV rows. On a 2-core AMD EPYC VM shared with other
    jobs this took 0.6 to 1.0 s.
    """
    root = Path(directory) if directory is not None else DEFAULT_FIXTURES_DIR
    started = time.perf_counter()
    _check_manifest(root)

    occupations = {
        row[0]: _occupation_from_row(row)
        for row in _read_rows(root / OCCUPATIONS_FILE, _OCCUPATION_COLUMNS)
    }
    skills = {
        row[0]: _skill_from_row(row)
        for row in _read_rows(root / SKILLS_FILE, _SKILL_COLUMNS)
    }
    isco_groups = {
        code: title
        for code, _level, title in _read_rows(root / ISCO_GROUPS_FILE, _ISCO_COLUMNS)
    }
    essential, optional = _read_relations(root / RELATIONS_FILE, occupations, skills)
    _check_isco_codes(root / OCCUPATIONS_FILE, occupations, isco_groups)

    taxonomy = Taxonomy(
        TAXONOMY_VERSION, occupations, skills, isco_groups, essential, optional
    )
    logger.debug(
        "loaded %r from %s in %.3f s", taxonomy, root, time.perf_counter() - started
    )
    return taxonomy


_OCCUPATION_COLUMNS = (
    "uri",
    "isco_code",
    "preferred_label",
    "alt_labels",
    "hidden_labels",
    "regulated",
)
_SKILL_COLUMNS = (
    "uri",
    "preferred_label",
    "alt_labels",
    "hidden_labels",
    "skill_type",
    "reuse_level",
)
_RELATION_COLUMNS = ("occupation_uri", "skill_uri", "relation_type")
_ISCO_COLUMNS = ("code", "level", "title")


def _rebuild_hint() -> str:
    return f"rebuild the fixtures with `{REBUILD_COMMAND}` from the repository root"


def _check_manifest(root: Path) -> None:
    path = root / MANIFEST_FILE
    if not path.is_file():
        raise TaxonomyError(f"taxonomy manifest {path} is missing; {_rebuild_hint()}")
    try:
        version = json.loads(path.read_text(encoding="utf-8")).get("taxonomy_version")
    except (OSError, ValueError, AttributeError) as error:
        raise TaxonomyError(
            f"taxonomy manifest {path} is unreadable ({error}); {_rebuild_hint()}"
        ) from error
    if version != TAXONOMY_VERSION:
        raise TaxonomyError(
            f"taxonomy manifest {path} has taxonomy_version {version!r}, but this code "
            f"expects {TAXONOMY_VERSION!r}; {_rebuild_hint()}"
        )


def _read_text(path: Path) -> str:
    """Return the decompressed UTF-8 text of a fixture file."""
    if not path.is_file():
        raise TaxonomyError(f"taxonomy file {path} is missing; {_rebuild_hint()}")
    try:
        with gzip.open(path, "rb") as compressed:
            return compressed.read().decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise TaxonomyError(
            f"taxonomy file {path} is unreadable ({error}); {_rebuild_hint()}"
        ) from error


def _read_rows(path: Path, columns: Sequence[str]) -> Iterator[list[str]]:
    """Yield the records of a fixture CSV as lists in ``columns`` order."""
    text = _read_text(path)
    # csv.reader rather than DictReader: building a dict per row doubles the load time.
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    if tuple(header) != tuple(columns):
        raise TaxonomyError(
            f"taxonomy file {path} has columns {header}, expected {list(columns)}; "
            f"{_rebuild_hint()}"
        )
    width = len(columns)
    for line, row in enumerate(reader, start=2):
        if len(row) != width:
            raise TaxonomyError(
                f"taxonomy file {path} line {line} has {len(row)} fields, "
                f"expected {width}; "
                f"{_rebuild_hint()}"
            )
        yield row


def _split(cell: str) -> tuple[str, ...]:
    return tuple(cell.split(_LIST_SEPARATOR)) if cell else _EMPTY


def _occupation_from_row(row: list[str]) -> Occupation:
    uri, isco_code, preferred_label, alt_labels, hidden_labels, regulated = row
    return Occupation(
        uri=uri,
        preferred_label=preferred_label,
        isco_code=isco_code,
        alt_labels=_split(alt_labels),
        hidden_labels=_split(hidden_labels),
        regulated=regulated == "true",
    )


def _skill_from_row(row: list[str]) -> Skill:
    uri, preferred_label, alt_labels, hidden_labels, skill_type, reuse_level = row
    return Skill(
        uri=uri,
        preferred_label=preferred_label,
        alt_labels=_split(alt_labels),
        hidden_labels=_split(hidden_labels),
        skill_type=skill_type,
        reuse_level=reuse_level,
    )


def _read_relations(
    path: Path, occupations: Mapping[str, Occupation], skills: Mapping[str, Skill]
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    # The relations are 124k rows, so they skip the csv module: URIs and the two
    # relation types contain no comma or quote, and any line that does not split
    # into three known values is rejected below. This halves the load time.
    lines = _read_text(path).split("\n")
    header = lines[0].split(",")
    if tuple(header) != _RELATION_COLUMNS:
        raise TaxonomyError(
            f"taxonomy file {path} has columns {header}, "
            f"expected {list(_RELATION_COLUMNS)}; "
            f"{_rebuild_hint()}"
        )
    lists: dict[str, dict[str, list[str]]] = {"essential": {}, "optional": {}}
    for line_number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        fields = line.split(",")
        skill = skills.get(fields[1]) if len(fields) == 3 else None
        by_occupation = lists.get(fields[2]) if len(fields) == 3 else None
        if skill is None or by_occupation is None or fields[0] not in occupations:
            raise TaxonomyError(
                f"taxonomy file {path} line {line_number} is not a relation between "
                "a known occupation and skill of type essential or optional: "
                f"{line!r}; {_rebuild_hint()}"
            )
        # Reuse the URI string of the Skill, so 124k relations share 14k strings.
        by_occupation.setdefault(fields[0], []).append(skill.uri)
    essential = {
        uri: tuple(sorted(values)) for uri, values in lists["essential"].items()
    }
    optional = {uri: tuple(sorted(values)) for uri, values in lists["optional"].items()}
    return essential, optional


def _check_isco_codes(
    path: Path, occupations: Mapping[str, Occupation], isco_groups: Mapping[str, str]
) -> None:
    for occupation in occupations.values():
        if occupation.isco_code not in isco_groups:
            raise TaxonomyError(
                f"taxonomy file {path} gives occupation {occupation.uri} the ISCO code "
                f"{occupation.isco_code!r}, which is not an ISCO-08 group; "
                f"{_rebuild_hint()}"
            )


def _index_by_isco_prefix(
    occupations: Iterable[Occupation],
) -> dict[str, tuple[str, ...]]:
    groups: dict[str, list[str]] = {}
    for occupation in occupations:
        for length in range(1, len(occupation.isco_code) + 1):
            groups.setdefault(occupation.isco_code[:length], []).append(occupation.uri)
    return {prefix: tuple(sorted(uris)) for prefix, uris in groups.items()}
