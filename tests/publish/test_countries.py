"""ISO 3166-1 alpha-2 -> alpha-3 (controller/publish/countries.py): OCPI Location.country is alpha-3."""

from __future__ import annotations

import re

import pytest

from controller.config.refdata import COUNTRIES
from controller.publish.countries import ALPHA3, alpha3


def test_every_country_the_loader_accepts_has_an_alpha3_code() -> None:
    assert set(ALPHA3) == set(COUNTRIES)


def test_alpha3_codes_are_three_upper_case_letters_and_unique() -> None:
    assert all(re.fullmatch(r"[A-Z]{3}", code) for code in ALPHA3.values())
    assert len(set(ALPHA3.values())) == len(ALPHA3)


@pytest.mark.parametrize(("a2", "a3"), [("NL", "NLD"), ("be", "BEL"), ("DE", "DEU"), ("GB", "GBR"), ("CH", "CHE"),
                                        ("AT", "AUT"), ("US", "USA"), ("ZA", "ZAF")])
def test_well_known_countries_map_to_their_alpha3_code(a2: str, a3: str) -> None:
    assert alpha3(a2) == a3
