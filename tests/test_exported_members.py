"""The package's public names: sorted, complete and importable."""

from __future__ import annotations

import matching


def test_all_sorted_and_unique() -> None:
    assert matching.__all__ == sorted(set(matching.__all__))


def test_all_names_resolve() -> None:
    for name in matching.__all__:
        assert getattr(matching, name) is not None, name


def test_public_attributes_listed() -> None:
    public = {
        name
        for name, value in vars(matching).items()
        if not name.startswith("_") and type(value).__name__ != "module"
    }
    assert public == set(matching.__all__)
