"""Shared fixtures: the real taxonomy, model and engine, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from matching.rounds import MatchingEngine
from matching.taxonomy import Taxonomy, load_taxonomy


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture(scope="session")
def vector_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A label-vector cache shared by the session's engines."""
    return tmp_path_factory.mktemp("label-vectors")


@pytest.fixture(scope="session")
def engine(vector_cache_dir: Path) -> MatchingEngine:
    """The real engine: bundled ESCO fixtures and the offline MiniLM model."""
    return MatchingEngine.from_fixtures(cache_dir=vector_cache_dir)
