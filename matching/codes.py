"""Code lists the models validate against: countries, languages, CEFR, ISIC, EQF.

Country and language codes come from ``pycountry`` (ISO 3166-1 and ISO 639-1
tables maintained with the Debian iso-codes project), so the lists stay current
without hand-kept copies.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import pycountry

# Kosovo has no ISO 3166-1 code, so accept "XK", the user-assigned code that the
# European Commission, the ILO and most visa systems use for it.
EXTRA_COUNTRY_CODES = frozenset({"XK"})

CEFR_LEVELS: tuple[str, ...] = ("A1", "A2", "B1", "B2", "C1", "C2")

# ISIC Rev. 4 sections, the sector unit that agreements and quota cells name.
ISIC_SECTIONS: dict[str, str] = {
    "A": "Agriculture, forestry and fishing",
    "B": "Mining and quarrying",
    "C": "Manufacturing",
    "D": "Electricity, gas, steam and air conditioning supply",
    "E": "Water supply; sewerage, waste management and remediation activities",
    "F": "Construction",
    "G": "Wholesale and retail trade; repair of motor vehicles and motorcycles",
    "H": "Transportation and storage",
    "I": "Accommodation and food service activities",
    "J": "Information and communication",
    "K": "Financial and insurance activities",
    "L": "Real estate activities",
    "M": "Professional, scientific and technical activities",
    "N": "Administrative and support service activities",
    "O": "Public administration and defence; compulsory social security",
    "P": "Education",
    "Q": "Human health and social work activities",
    "R": "Arts, entertainment and recreation",
    "S": "Other service activities",
    "T": "Activities of households as employers",
    "U": "Activities of extraterritorial organizations and bodies",
}

RecognitionState = Literal["recognised", "partial", "pending", "none"]
RECOGNITION_STATES: tuple[str, ...] = ("recognised", "partial", "pending", "none")

Sex = Literal["female", "male", "other", "unspecified"]
SEX_VALUES: tuple[str, ...] = ("female", "male", "other", "unspecified")

QuotaMode = Literal["guaranteed", "proportional"]
QUOTA_MODES: tuple[str, ...] = ("guaranteed", "proportional")

# European Qualifications Framework levels; 1 is basic general education,
# 6 a bachelor's degree, 8 a doctorate.
EQF_MIN_LEVEL = 1
EQF_MAX_LEVEL = 8


@lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    """Return every accepted ISO 3166-1 alpha-2 code, plus ``XK`` for Kosovo."""
    codes = {country.alpha_2 for country in pycountry.countries}
    return frozenset(codes | EXTRA_COUNTRY_CODES)


@lru_cache(maxsize=1)
def language_codes() -> frozenset[str]:
    """Return every ISO 639-1 two-letter language code."""
    return frozenset(
        language.alpha_2
        for language in pycountry.languages
        if hasattr(language, "alpha_2")
    )


def cefr_rank(level: str) -> int:
    """Return the position of a CEFR level, 1 for A1 up to 6 for C2."""
    return CEFR_LEVELS.index(level) + 1


def is_country_code(code: str) -> bool:
    """Tell whether ``code`` is an accepted alpha-2 country code."""
    return code in country_codes()


def is_language_code(code: str) -> bool:
    """Tell whether ``code`` is an ISO 639-1 language code."""
    return code in language_codes()
