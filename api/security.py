"""API keys and candidate pseudonyms.

A key is stored as its public id, a random salt and ``sha256(salt + key)``;
the key itself is never stored or logged. The public id is derived from the
key (the first 16 hex digits of its SHA-256), so a request's key can be looked
up in one indexed read, and a key supplied through the environment needs no
special format. Digests are compared with :func:`hmac.compare_digest`, so the
comparison takes the same time wherever the first differing byte is.

Candidates are shown to employers as ``HMAC-SHA256(secret, employer, registrant)``
truncated to 20 hex digits: stable for one employer, different between
employers, so two employers cannot link their shortlists to one person.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "agency", "employer"]
ROLES: tuple[str, ...] = ("admin", "agency", "employer")

KEY_PREFIX = "lm_"
KEY_ID_HEX_DIGITS = 16
PSEUDONYM_PREFIX = "cand_"
PSEUDONYM_HEX_DIGITS = 20


@dataclass(frozen=True)
class StoredKey:
    """The parts of an API key that are stored."""

    id: str
    salt: str
    secret_sha256: str


def generate_key() -> str:
    """Return a new random API key (256 bits of entropy)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_id_of(key: str) -> str:
    """Return the public id of a key: a prefix of its SHA-256 in hex."""
    return hashlib.sha256(key.encode()).hexdigest()[:KEY_ID_HEX_DIGITS]


def hash_key(key: str) -> StoredKey:
    """Return the stored form of a key with a fresh salt."""
    salt = secrets.token_hex(16)
    return StoredKey(id=key_id_of(key), salt=salt, secret_sha256=_digest(salt, key))


def verify_key(key: str, stored: StoredKey) -> bool:
    """Tell whether ``key`` is the key behind ``stored``, in constant time."""
    return hmac.compare_digest(_digest(stored.salt, key), stored.secret_sha256)


def _digest(salt: str, key: str) -> str:
    return hashlib.sha256(salt.encode() + key.encode()).hexdigest()


def pseudonym_of(secret: bytes, employer_id: str, registrant_id: int) -> str:
    """Return the pseudonymous candidate id of a registrant for one employer."""
    message = f"{employer_id}\x1f{registrant_id}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:PSEUDONYM_HEX_DIGITS]


def sha256_hex(data: bytes) -> str:
    """Return the SHA-256 of ``data`` in hex."""
    return hashlib.sha256(data).hexdigest()
