"""Generate a large, valid chargeops owner repository for benchmarks.

The repository is laid out and written the way an owner would keep it: block-style YAML,
one Owner file, shared tariffs / profiles / reservation policies, one file per organisation
for access groups, card lists split per group (and per 1,000 cards), and one file per site
holding that site's ``---``-separated Station documents.

Output is deterministic for a given seed and size. Everything generated is meant to be
valid: the benchmark measures the success path. ``check()`` (CLI ``--check``) verifies that
against the JSON Schemas in ``schemas/`` with jsonschema_rs + yaml_rs, plus the cross-document
rules the generator relies on (unique names / identities / idTags, references resolve,
no include cycles, public stations carry activation, coordinates and address).

Usage::

    .venv/bin/python bench/gen_owner_repo.py OUT_DIR [--stations N] [--cards N] [--groups N]
        [--seed N] [--quick] [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from random import Random
from typing import Any

Doc = dict[str, Any]

API_VERSION = "chargeops.io/v1"
REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = REPO_ROOT / "schemas"

# --------------------------------------------------------------------------------------------
# A small block-style YAML writer (what a person would type; no flow style, no anchors).
# --------------------------------------------------------------------------------------------


class Quoted(str):
    """A string that is always written double-quoted (idTags, dates, times, prices, postal codes)."""

    __slots__ = ()


_PLAIN_OK = re.compile(r"[A-Za-z][A-Za-z0-9 ._/@()+,-]*\Z")
# Words YAML 1.1 (PyYAML) or 1.2 would not read back as the same string.
_RESERVED = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf"})


def _scalar(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        if (
            not isinstance(value, Quoted)
            and _PLAIN_OK.match(value)
            and not value.endswith(" ")
            and value.lower() not in _RESERVED
        ):
            return value
        return json.dumps(value)  # a JSON string is a valid YAML double-quoted scalar
    raise TypeError(f"cannot write {type(value).__name__} as a YAML scalar")


def _emit_map(mapping: Doc, indent: int, out: list[str]) -> None:
    if not mapping:
        raise ValueError("empty mapping would need flow style")
    pad = " " * indent
    for key, value in mapping.items():
        k = _scalar(key)
        if isinstance(value, dict):
            out.append(f"{pad}{k}:")
            _emit_map(value, indent + 2, out)
        elif isinstance(value, list):
            out.append(f"{pad}{k}:")
            _emit_seq(value, indent + 2, out)
        else:
            out.append(f"{pad}{k}: {_scalar(value)}")


def _emit_seq(seq: list[Any], indent: int, out: list[str]) -> None:
    if not seq:
        raise ValueError("empty sequence would need flow style")
    pad = " " * indent
    for item in seq:
        if isinstance(item, dict):
            sub: list[str] = []
            _emit_map(item, indent + 2, sub)
            out.append(f"{pad}- {sub[0][indent + 2 :]}")
            out.extend(sub[1:])
        elif isinstance(item, list):
            raise ValueError("nested sequences are not used in owner configs")
        else:
            out.append(f"{pad}- {_scalar(item)}")


def to_yaml(docs: Sequence[Doc], header: str = "") -> str:
    """Block-style YAML text for one or more documents, separated by ``---``."""
    out: list[str] = [f"# {line}".rstrip() for line in header.splitlines()]
    for i, doc in enumerate(docs):
        if i:
            out.append("---")
        _emit_map(doc, 0, out)
    out.append("")
    return "\n".join(out)


def _doc(kind: str, name: str, spec: Doc, labels: dict[str, str] | None = None, description: str = "") -> Doc:
    metadata: Doc = {"name": name}
    if labels:
        metadata["labels"] = labels
    if description:
        metadata["description"] = description
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


# --------------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------------

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
COUNTRY_TZ = {"NL": "Europe/Amsterdam", "BE": "Europe/Brussels", "DE": "Europe/Berlin"}


@dataclass(frozen=True)
class City:
    code: str
    name: str
    region: str
    lat: float
    lon: float
    country: str


CITIES = [
    City("ams", "Amsterdam", "noord-holland", 52.3676, 4.9041, "NL"),
    City("rtm", "Rotterdam", "zuid-holland", 51.9244, 4.4777, "NL"),
    City("utr", "Utrecht", "utrecht", 52.0907, 5.1214, "NL"),
    City("dhg", "Den Haag", "zuid-holland", 52.0705, 4.3007, "NL"),
    City("ehv", "Eindhoven", "noord-brabant", 51.4416, 5.4697, "NL"),
    City("gro", "Groningen", "groningen", 53.2194, 6.5665, "NL"),
    City("tlb", "Tilburg", "noord-brabant", 51.5555, 5.0913, "NL"),
    City("alm", "Almere", "flevoland", 52.3508, 5.2647, "NL"),
    City("bre", "Breda", "noord-brabant", 51.5719, 4.7683, "NL"),
    City("nij", "Nijmegen", "gelderland", 51.8126, 5.8372, "NL"),
    City("arn", "Arnhem", "gelderland", 51.9851, 5.8987, "NL"),
    City("hlm", "Haarlem", "noord-holland", 52.3874, 4.6462, "NL"),
    City("zwo", "Zwolle", "overijssel", 52.5168, 6.0830, "NL"),
    City("lei", "Leiden", "zuid-holland", 52.1601, 4.4970, "NL"),
    City("mst", "Maastricht", "limburg", 50.8514, 5.6910, "NL"),
    City("dlf", "Delft", "zuid-holland", 52.0116, 4.3571, "NL"),
    City("amf", "Amersfoort", "utrecht", 52.1561, 5.3878, "NL"),
    City("ens", "Enschede", "overijssel", 52.2215, 6.8937, "NL"),
    City("shb", "'s-Hertogenbosch", "noord-brabant", 51.6978, 5.3037, "NL"),
    City("ant", "Antwerpen", "antwerpen", 51.2194, 4.4025, "BE"),
    City("gnt", "Gent", "oost-vlaanderen", 51.0543, 3.7174, "BE"),
    City("aac", "Aachen", "nordrhein-westfalen", 50.7753, 6.0839, "DE"),
]

STREETS = [
    "Stationsplein",
    "Kerkstraat",
    "Dorpsstraat",
    "Marktplein",
    "Industrieweg",
    "Havenweg",
    "Parallelweg",
    "Nieuwe Gracht",
    "Julianalaan",
    "Wilhelminastraat",
    "Schoolstraat",
    "Molenweg",
    "Beatrixlaan",
    "Ringweg-Zuid",
    "Energieweg",
    "Transportweg",
    "Kanaalweg",
    "Parkweg",
    "Oude Haven",
    "Zuidas",
    "Businesspark Noord",
    "Vlietweg",
    "Lange Voorhout",
    "Keizersgracht",
]

SITE_PLACES = {
    "street": ["centrum", "west", "oost", "noord", "zuid", "haven", "park", "markt"],
    "garage": ["p1", "p2", "centrum", "station", "stadhuis", "ziekenhuis", "zuid"],
    "retail": ["mall", "plaza", "boulevard", "outlet", "winkelhart"],
    "highway": ["a2", "a4", "a12", "a27", "a28", "a58", "a67"],
    "hotel": ["grand", "airport", "centraal", "conference"],
    "workplace": ["hq", "campus", "offices", "plant", "labs"],
    "depot": ["depot", "hub", "yard", "distribution"],
    "residential": ["vve", "residence", "apartments", "hof"],
}


@dataclass(frozen=True)
class Plug:
    standard: str
    format: str
    power_type: str
    volts: int
    amps: int
    kw: float | None

    def doc(self) -> Doc:
        d: Doc = {
            "standard": self.standard,
            "format": self.format,
            "powerType": self.power_type,
            "maxVoltage": self.volts,
            "maxAmperage": self.amps,
        }
        if self.kw is not None:
            d["maxPowerKw"] = self.kw
        return d


AC22 = Plug("IEC_62196_T2", "SOCKET", "AC_3_PHASE", 230, 32, 22.0)
AC11 = Plug("IEC_62196_T2", "SOCKET", "AC_3_PHASE", 230, 16, 11.0)
AC7 = Plug("IEC_62196_T2", "SOCKET", "AC_1_PHASE", 230, 32, None)
AC43 = Plug("IEC_62196_T2", "CABLE", "AC_3_PHASE", 230, 63, 43.0)
CCS50 = Plug("IEC_62196_T2_COMBO", "CABLE", "DC", 500, 125, 50.0)
CHADEMO50 = Plug("CHADEMO", "CABLE", "DC", 500, 125, 50.0)
CCS150 = Plug("IEC_62196_T2_COMBO", "CABLE", "DC", 920, 200, 150.0)
CCS300 = Plug("IEC_62196_T2_COMBO", "CABLE", "DC", 920, 500, 300.0)


@dataclass(frozen=True)
class Hardware:
    model: str
    vendor: str
    id_prefix: str
    evses: tuple[tuple[Plug, ...], ...]

    @property
    def dc(self) -> bool:
        return any(p.power_type == "DC" for evse in self.evses for p in evse)


HARDWARE = {
    h.model: h
    for h in [
        Hardware("eve-single", "alfen", "ACE", ((AC22,),)),
        Hardware("eve-double", "alfen", "ACE", ((AC22,), (AC22,))),
        Hardware("eve-single-1ph", "alfen", "ACE", ((AC7,),)),
        Hardware("businessline", "evbox", "evb-p", ((AC11,), (AC11,))),
        Hardware("citypole-quad", "ecotap", "ECT", ((AC22,), (AC22,), (AC22,), (AC22,))),
        Hardware("terra-54", "abb", "T54-", ((CCS50, CHADEMO50), (AC43,))),
        Hardware("terra-184", "abb", "T184-", ((CCS150,), (CCS150,))),
        Hardware("satellite-dual", "kempower", "KSD", ((CCS300,), (CCS300,))),
    ]
}


@dataclass(frozen=True)
class SiteKind:
    name: str
    weight: int
    visibility: str
    plan: str
    hardware: tuple[str, ...]
    tariffs: tuple[str, ...]
    dc_tariff: str
    restricted: bool


SITE_KINDS = [
    SiteKind(
        "street",
        20,
        "public",
        "standard",
        ("citypole-quad", "eve-double", "businessline"),
        ("street-ac", "municipal-ac", "night-saver-ac"),
        "municipal-dc",
        False,
    ),
    SiteKind(
        "garage",
        15,
        "public",
        "standard",
        ("eve-double", "businessline", "terra-54"),
        ("garage-ac", "event-ac", "legacy-ac"),
        "garage-dc",
        False,
    ),
    SiteKind(
        "retail",
        14,
        "public",
        "standard",
        ("eve-double", "terra-54", "terra-184"),
        ("retail-ac", "free-charging"),
        "retail-dc",
        False,
    ),
    SiteKind("highway", 6, "public", "premium", ("terra-184", "satellite-dual"), ("hpc", "taxi-dc"), "hpc", False),
    SiteKind("hotel", 8, "private", "standard", ("eve-double", "eve-single"), ("hotel-guest-ac",), "retail-dc", True),
    SiteKind(
        "workplace",
        19,
        "private",
        "standard",
        ("eve-double", "businessline", "terra-54"),
        ("workplace-ac",),
        "garage-dc",
        True,
    ),
    SiteKind(
        "depot",
        10,
        "hidden",
        "fleet",
        ("businessline", "terra-184", "satellite-dual"),
        ("depot-ac", "bus-depot-dc"),
        "depot-dc",
        True,
    ),
    SiteKind(
        "residential",
        8,
        "private",
        "standard",
        ("eve-single-1ph", "eve-single"),
        ("residential-ac",),
        "retail-dc",
        True,
    ),
]

ORG_NAMES = [
    "tulip-logistics",
    "polder-bank",
    "delta-care",
    "noord-energie",
    "rijn-transport",
    "gemeente-utrecht",
    "city-taxi",
    "zuidas-offices",
    "harbour-services",
    "greenfleet",
    "univ-leiden",
    "maasstad-zorg",
    "airport-crew",
    "tech-campus",
    "canal-hotels",
    "retail-group",
    "parcel-express",
    "bus-lijn",
    "vve-de-hof",
    "dune-insurance",
    "brabant-foods",
    "windmill-it",
    "tram-service",
    "clean-city",
    "bike-share",
    "veluwe-parks",
    "kaas-co",
    "flower-auction",
    "dutch-rail-staff",
    "port-authority",
]
UNITS = [
    "management",
    "staff",
    "fleet",
    "visitors",
    "contractors",
    "taxi",
    "pool-cars",
    "night-shift",
    "guests",
    "residents",
    "service",
    "interns",
    "security",
    "drivers",
    "partners",
    "sales",
]

ENERGY = "Energy.Active.Import.Register"
OCPP_BASE: Doc = {
    "HeartbeatInterval": 300,
    "MeterValueSampleInterval": 60,
    "ClockAlignedDataInterval": 900,
    "MeterValuesSampledData": "Energy.Active.Import.Register,Power.Active.Import",
    "StopTransactionOnEVSideDisconnect": True,
    "ConnectionTimeOut": 90,
}
OCPP_OVERRIDES: list[Doc] = [
    {"HeartbeatInterval": 600},
    {"MeterValueSampleInterval": 30, "MeterValuesSampledData": "Energy.Active.Import.Register,Power.Active.Import,SoC"},
    {"ConnectionTimeOut": 180},
    {"WebSocketPingInterval": 120, "TransactionMessageAttempts": 5},
    {"UnlockConnectorOnEVSideDisconnect": False},
]


def _money(x: float) -> Quoted:
    return Quoted(f"{x:.2f}")


def _clock(h: int, m: int = 0) -> Quoted:
    return Quoted(f"{h:02d}:{m:02d}")


# --------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------


@dataclass
class Group:
    name: str
    org: str
    unit: str
    includes: list[str]
    n_cards: int = 0


class _Gen:
    def __init__(self, stations: int, cards: int, groups: int, seed: int) -> None:
        if stations < 1 or groups < 1 or cards < groups:
            raise ValueError("need stations >= 1, groups >= 1 and cards >= groups")
        self.n_stations = stations
        self.n_cards = cards
        self.n_groups = groups
        self.rng = Random(seed)
        self.groups: list[Group] = []
        self.orgs: list[str] = []
        self.used_tariffs: set[str] = set()
        self.used_policies: set[str] = set()
        self.id_tags: set[str] = set()

    # ---- groups and cards -------------------------------------------------------------------

    def make_groups(self) -> None:
        rng = self.rng
        n_orgs = max(1, round(self.n_groups / 8))
        names = list(ORG_NAMES)
        while len(names) < n_orgs:
            names.append(f"{ORG_NAMES[len(names) % len(ORG_NAMES)]}-{len(names) // len(ORG_NAMES) + 1}")
        self.orgs = names[:n_orgs]
        per_org = [self.n_groups // n_orgs + (1 if i < self.n_groups % n_orgs else 0) for i in range(n_orgs)]
        for org, k in zip(self.orgs, per_org):
            if k == 1:
                self.groups.append(Group(f"{org}-drivers", org, "drivers", []))
                continue
            units = [u for u in UNITS if u not in ("management", "staff")]
            rng.shuffle(units)
            units = ["management", "staff", *units]
            if k - 1 <= len(UNITS):
                chosen = sorted(units[: k - 1], key=UNITS.index)
            else:
                chosen = [*UNITS, *(f"team-{i}" for i in range(k - 1 - len(UNITS)))]
            members: list[str] = []
            for unit in chosen:
                includes = [f"{org}-management"] if unit == "staff" and "management" in chosen else []
                self.groups.append(Group(f"{org}-{unit}", org, unit, includes))
                members.append(f"{org}-{unit}")
            self.groups.append(Group(f"{org}-all", org, "all", members))
        # A few partnerships across organisations: a visitors group includes another org's
        # fleet group (fleet groups include nothing, so this cannot make a cycle).
        fleets = [g.name for g in self.groups if g.unit == "fleet"]
        for g in self.groups:
            if g.unit == "visitors" and fleets and rng.random() < 0.3:
                other = rng.choice(fleets)
                if not other.startswith(f"{g.org}-"):
                    g.includes.append(other)

    def distribute_cards(self) -> None:
        rng = self.rng
        umbrella = [g for g in self.groups if g.unit == "all"]
        regular = [g for g in self.groups if g.unit != "all"]
        left = self.n_cards
        for g in umbrella:
            g.n_cards = min(rng.randint(1, 3), max(1, left - len(regular)))
            left -= g.n_cards
        weights = [rng.lognormvariate(0.0, 1.1) for _ in regular]
        total_w = sum(weights)
        spare = left - len(regular)
        counts = [1 + int(spare * w / total_w) for w in weights]
        for i in range(left - sum(counts)):
            counts[i % len(counts)] += 1
        for g, c in zip(regular, counts):
            g.n_cards = c

    def new_id_tag(self) -> str:
        rng = self.rng
        while True:
            r = rng.random()
            if r < 0.40:
                tag = f"{rng.getrandbits(32):08X}"
            elif r < 0.75:
                tag = f"04{rng.getrandbits(48):012X}"
            elif r < 0.85:
                tag = f"04{rng.getrandbits(48):012x}"
            elif r < 0.95:
                tag = f"NL-PCH-C{rng.randrange(10**8):08d}-{rng.randrange(10)}"
            else:
                tag = f"00{rng.randrange(10**7):07d}"
            key = tag.upper()
            if key not in self.id_tags:
                self.id_tags.add(key)
                return tag

    def cards(self, n: int) -> list[Doc]:
        rng = self.rng
        out: list[Doc] = []
        driver = ""
        for _ in range(n):
            if not driver or rng.random() > 0.12:  # some drivers hold two cards
                driver = f"drv-{rng.getrandbits(48):012x}"
            card: Doc = {"idTag": Quoted(self.new_id_tag()), "driver": driver}
            if rng.random() < 0.15:
                day = date(2027, 1, 1).toordinal() + rng.randrange(5 * 365)
                card["validUntil"] = Quoted(date.fromordinal(day).isoformat())
            if rng.random() < 0.01:
                card["blocked"] = True
            out.append(card)
        return out

    def group_files(self) -> Iterator[tuple[str, list[Doc], str]]:
        for org in self.orgs:
            docs: list[Doc] = []
            for g in self.groups:
                if g.org != org:
                    continue
                spec: Doc = {}
                if g.includes:
                    spec["includes"] = list(g.includes)
                if g.unit in ("fleet", "pool-cars", "taxi"):
                    spec["maxConcurrentSessions"] = 3 if g.unit == "fleet" else 2
                if g.n_cards <= 12:
                    spec["cards"] = self.cards(g.n_cards)
                if not spec:  # cards come from cards/*.yaml; state the default rather than `spec: {}`
                    spec["maxConcurrentSessions"] = 1
                description = "Everyone of the organisation." if g.unit == "all" else ""
                docs.append(_doc("AccessGroup", g.name, spec, {"org": org}, description))
            header = f"Access groups of {org}.\nCards: inline for small groups, cards/<group>*.yaml for the rest."
            yield f"groups/{org}.yaml", docs, header

    def card_files(self) -> Iterator[tuple[str, list[Doc], str]]:
        for g in self.groups:
            if g.n_cards <= 12:
                continue
            chunks = (g.n_cards + 999) // 1000
            for part in range(chunks):
                n = min(1000, g.n_cards - part * 1000)
                suffix = f"-{part + 1:02d}" if chunks > 1 else ""
                doc = _doc("CardList", f"{g.name}-cards{suffix}", {"group": g.name, "cards": self.cards(n)})
                header = f"Cards of access group {g.name}" + (f" (part {part + 1} of {chunks})." if chunks > 1 else ".")
                yield f"cards/{g.name}{suffix}.yaml", [doc], header

    def groups_with(self, unit: str, n: int) -> list[str]:
        found = [g.name for g in self.groups if g.unit == unit][:n]
        if not found:
            found = [g.name for g in self.groups if g.unit in ("all", "drivers")][:n]
        return found

    # ---- stations ------------------------------------------------------------------------------

    def site_sizes(self) -> list[int]:
        sizes: list[int] = []
        left = self.n_stations
        while left > 0:
            size = left if left <= 100 else self.rng.randint(10, min(100, left - 10))
            sizes.append(size)
            left -= size
        return sizes

    def stations(self) -> list[tuple[str, list[Doc], str]]:
        rng = self.rng
        sizes = self.site_sizes()
        kinds = rng.choices(SITE_KINDS, weights=[k.weight for k in SITE_KINDS], k=len(sizes))
        # make sure every kind occurs when there are enough sites
        for i, kind in enumerate(SITE_KINDS[: len(sizes)]):
            if kind not in kinds:
                kinds[i] = kind
        restricted_sites = [i for i, k in enumerate(kinds) if k.restricted]
        orgs = list(self.orgs)
        rng.shuffle(orgs)
        site_org = {site: orgs[j % len(orgs)] for j, site in enumerate(restricted_sites)}
        kind_count: dict[str, int] = {}
        site_names: set[str] = set()
        serials = rng.sample(range(1_000_000, 9_999_999), self.n_stations)
        files: list[tuple[str, list[Doc], str]] = []
        n_station = 0
        for site_idx, (size, kind) in enumerate(zip(sizes, kinds)):
            nth = kind_count.get(kind.name, 0)
            kind_count[kind.name] = nth + 1
            city = rng.choice(CITIES)
            place = rng.choice(SITE_PLACES[kind.name])
            site = f"{city.code}-{kind.name}-{place}"
            if site in site_names:
                site = f"{site}-{site_idx}"
            site_names.add(site)
            street = f"{rng.choice(STREETS)} {rng.randint(1, 250)}"
            if city.country == "NL":
                postal = f"{rng.randint(1000, 9999)} {chr(65 + rng.randrange(26))}{chr(65 + rng.randrange(26))}"
            elif city.country == "BE":
                postal = f"{rng.randint(1000, 9999)}"
            else:
                postal = f"{rng.randint(10000, 99999)}"
            lat0 = city.lat + rng.uniform(-0.04, 0.04)
            lon0 = city.lon + rng.uniform(-0.06, 0.06)
            hw = HARDWARE[kind.hardware[nth % len(kind.hardware)]]
            tariff = kind.tariffs[nth % len(kind.tariffs)]
            visibility = kind.visibility
            if kind.name == "workplace" and rng.random() < 0.15:
                visibility = "hidden"
            org = site_org.get(site_idx)
            access_groups = [f"{org}-all"] if org and f"{org}-all" in self._group_names else []
            if org and not access_groups:
                access_groups = [g.name for g in self.groups if g.org == org][:1]
            if kind.name == "workplace" and org and rng.random() < 0.2 and len(self.orgs) > 1:
                other = self.orgs[(self.orgs.index(org) + 1) % len(self.orgs)]
                shared = next(g.name for g in self.groups if g.org == other and g.unit in ("all", "drivers"))
                access_groups.append(shared)
            org_fleet = next((g.name for g in self.groups if g.org == org and g.unit in ("fleet", "pool-cars")), None)
            docs: list[Doc] = []
            for n in range(1, size + 1):
                n_station += 1
                name = f"{site}-{n:03d}"
                labels = {
                    "site-type": kind.name,
                    "region": city.region,
                    "country": city.country.lower(),
                    "vendor": hw.vendor,
                    "model": hw.model,
                }
                if rng.random() < 0.05:
                    labels["firmware-channel"] = "beta"
                if org:
                    labels["chargeops.io/tenant"] = org
                spec: Doc = {
                    "identity": f"{hw.id_prefix}{serials[n_station - 1]}",
                    "displayName": f"{city.name} {place.capitalize()} {kind.name} {n}",
                    "site": site,
                    "address": {
                        "street": street,
                        "postalCode": Quoted(postal),
                        "city": city.name,
                        "country": city.country,
                    },
                    "coordinates": {
                        "latitude": round(lat0 + rng.uniform(-0.0003, 0.0003), 6),
                        "longitude": round(lon0 + rng.uniform(-0.0005, 0.0005), 6),
                    },
                }
                if city.country != "NL":
                    spec["timezone"] = COUNTRY_TZ[city.country]
                if kind.name == "retail":
                    spec["openingHours"] = {
                        "alwaysOpen": False,
                        "regular": [
                            {"days": ["mon", "tue", "wed", "thu", "fri", "sat"], "start": _clock(8), "end": _clock(22)},
                            {"days": ["sun"], "start": _clock(10), "end": _clock(18)},
                        ],
                    }
                activation: Doc = {"plan": kind.plan}
                if visibility == "hidden" and rng.random() < 0.2:
                    activation["activated"] = False
                spec["activation"] = activation
                spec["visibility"] = visibility
                if visibility == "private":
                    spec["publishAllowedTo"] = list(access_groups)
                if tariff != "street-ac":
                    spec["tariff"] = tariff
                self.used_tariffs.add(tariff)
                if access_groups:
                    spec["access"] = {"mode": "restricted", "groups": list(access_groups)}
                if kind.name == "hotel":
                    spec["reservationPolicy"] = "hotel-guests"
                    self.used_policies.add("hotel-guests")
                if rng.random() < 0.03:
                    spec["ocppConfiguration"] = dict(rng.choice(OCPP_OVERRIDES))
                if rng.random() < 0.02:
                    spec["profiles"] = ["quiet-hours"]
                spec["credentials"] = {"authorizationKey": {"env": "CHARGEOPS_KEY_" + name.upper().replace("-", "_")}}
                spec["evses"] = self.evses(kind, hw, org_fleet, visibility)
                docs.append(_doc("Station", name, spec, labels))
            header = (
                f"Site {site}: {size} stations ({hw.vendor} {hw.model}), {city.name}.\n"
                f"Visibility {visibility}; tariff {tariff}."
            )
            files.append((f"stations/{site}.yaml", docs, header))
        return files

    def evses(self, kind: SiteKind, hw: Hardware, org_fleet: str | None, visibility: str) -> list[Doc]:
        rng = self.rng
        out: list[Doc] = []
        for i, plugs in enumerate(hw.evses, start=1):
            evse: Doc = {"id": i, "plugs": [p.doc() for p in plugs]}
            is_dc = any(p.power_type == "DC" for p in plugs)
            if is_dc and len(hw.evses) > 1 and not all(p.power_type == "DC" for e in hw.evses for p in e):
                evse["tariff"] = kind.dc_tariff  # mixed AC/DC charger: DC outlet priced apart
                self.used_tariffs.add(kind.dc_tariff)
            if visibility == "public" and i == 1 and rng.random() < 0.04:
                evse["reservationPolicy"] = "accessible-bay"
                self.used_policies.add("accessible-bay")
            elif kind.name == "highway" and rng.random() < 0.15:
                evse["reservationPolicy"] = "paid-reservations"
                self.used_policies.add("paid-reservations")
            if org_fleet and i == len(hw.evses) and len(hw.evses) > 1 and rng.random() < 0.15:
                evse["access"] = {"mode": "restricted", "groups": [org_fleet]}
                evse["tariff"] = "pool-car"
                self.used_tariffs.add("pool-car")
            if kind.name == "depot" and rng.random() < 0.02:
                evse["availability"] = "inoperative"
            out.append(evse)
        return out

    @property
    def _group_names(self) -> set[str]:
        return {g.name for g in self.groups}

    # ---- shared documents ----------------------------------------------------------------------

    def owner(self) -> Doc:
        return _doc(
            "Owner",
            "polder-charge",
            {
                "displayName": "Polder Charge B.V.",
                "timezone": "Europe/Amsterdam",
                "country": "NL",
                "currency": "EUR",
                "ocpi": {"countryCode": "NL", "partyId": "PCH"},
                "plans": [
                    {"name": "standard", "description": "Public and semi-public AC/DC charging."},
                    {"name": "premium", "description": "High-power charging with 99.5 % uptime support."},
                    {"name": "fleet", "description": "Depot charging for fleet customers."},
                ],
                "billing": {
                    "enabled": True,
                    "payoutAccountRef": "acct_1PolderChargeNL",
                    "platformFeePercent": Quoted("2.5"),
                    "pricesIncludeTax": True,
                    "taxRatePercent": Quoted("21"),
                },
                "dataRetention": {"meterValuesDays": 90, "personalDataDays": 400},
                "rollout": {"waves": [5, 25, 100], "failureThresholdPercent": Quoted("10"), "minStationsForWaves": 20},
                "safety": {"maxRemovalPercent": Quoted("10")},
                "defaults": {
                    "tariff": "street-ac",
                    "access": {"mode": "public"},
                    "availability": "operative",
                    "offlineAuthorization": False,
                    "securityProfile": 2,
                    "ocppConfiguration": dict(OCPP_BASE),
                    "driftWarnOnly": ["ConnectionTimeOut"],
                    "maintenance": {
                        "rebootWindows": [{"days": list(ALL_DAYS), "start": _clock(2), "end": _clock(5)}],
                        "maxRebootDeferralHours": 48,
                    },
                },
            },
            description="Polder Charge: public, workplace and fleet charging in NL, BE and DE.",
        )

    def tariffs(self) -> list[Doc]:
        peak = [
            {"name": "morning-peak", "days": list(WEEKDAYS), "start": _clock(7), "end": _clock(10)},
            {"name": "evening-peak", "days": list(WEEKDAYS), "start": _clock(16), "end": _clock(21)},
        ]
        night = {"name": "night", "days": list(ALL_DAYS), "start": _clock(23), "end": _clock(6)}
        weekend = {"name": "weekend", "days": ["sat", "sun"], "start": _clock(0), "end": _clock(24)}

        def windows(templates: list[Doc], prices: list[float]) -> list[Doc]:
            return [{**t, "price": {"perKwh": _money(p)}} for t, p in zip(templates, prices)]

        fleets = self.groups_with("fleet", 4)
        taxis = self.groups_with("taxi", 6)
        umbrellas = self.groups_with("all", 5)
        pools = self.groups_with("pool-cars", 3)

        def t(name: str, text: str, price: Doc, **extra: Any) -> Doc:
            spec: Doc = {"currency": "EUR", "displayText": text, "price": price, **extra}
            return _doc("Tariff", name, spec)

        idle_dc = {"perHour": _money(6), "graceMinutes": 30}
        return [
            t(
                "street-ac",
                "0.45 EUR/kWh",
                {"perKwh": _money(0.45)},
                windows=windows([*peak, night], [0.52, 0.55, 0.36]),
            ),
            t("municipal-ac", "0.39 EUR/kWh", {"perKwh": _money(0.39)}, windows=windows([weekend], [0.35])),
            t("municipal-dc", "0.59 EUR/kWh", {"perKwh": _money(0.59), "idle": idle_dc}),
            t(
                "night-saver-ac",
                "0.42 EUR/kWh, night 0.29",
                {"perKwh": _money(0.42)},
                windows=windows([{**night, "name": "night", "start": _clock(22)}], [0.29]),
            ),
            t(
                "garage-ac",
                "0.25 EUR start + 0.42 EUR/kWh",
                {"sessionFee": _money(0.25), "perKwh": _money(0.42)},
                displayTextOffline="Price as displayed at the entrance",
                maxPrice=_money(40),
            ),
            t("garage-dc", "0.59 EUR/kWh", {"perKwh": _money(0.59), "idle": idle_dc}),
            t(
                "event-ac",
                "5.00 EUR per session + 0.40 EUR/kWh",
                {"sessionFee": _money(5), "perKwh": _money(0.40)},
                minPrice=_money(5),
            ),
            t("legacy-ac", "1.20 EUR/h", {"perHour": _money(1.20)}, taxRatePercent=Quoted("21")),
            t(
                "retail-ac",
                "0.39 EUR/kWh",
                {"perKwh": _money(0.39)},
                windows=windows(
                    [
                        {"name": "shopping", "days": ["sat", "sun"], "start": _clock(8), "end": _clock(20)},
                        {"name": "weekday-evening", "days": list(WEEKDAYS), "start": _clock(18), "end": _clock(22)},
                    ],
                    [0.35, 0.35],
                ),
            ),
            t("retail-dc", "0.55 EUR/kWh", {"perKwh": _money(0.55), "idle": idle_dc}),
            t("free-charging", "Free charging for customers", {"perKwh": _money(0)}),
            t(
                "hpc",
                "0.69 EUR/kWh",
                {"perKwh": _money(0.69), "idle": {"perHour": _money(12), "graceMinutes": 15, "untilUnplug": True}},
                windows=windows(peak, [0.79, 0.79]),
                groupPrices=[{"group": g, "price": {"perKwh": _money(0.49)}} for g in fleets],
            ),
            t(
                "taxi-dc",
                "0.59 EUR/kWh, taxi 0.45",
                {"perKwh": _money(0.59)},
                groupPrices=[{"group": g, "price": {"perKwh": _money(0.45)}} for g in taxis],
            ),
            t(
                "hotel-guest-ac",
                "2.50 EUR + 0.35 EUR/kWh",
                {"sessionFee": _money(2.5), "perKwh": _money(0.35)},
                maxPrice=_money(25),
            ),
            t(
                "workplace-ac",
                "Employees free, others 0.30 EUR/kWh",
                {"perKwh": _money(0.30)},
                windows=windows(
                    [
                        {"name": "daytime", "days": list(WEEKDAYS), "start": _clock(9), "end": _clock(17)},
                        {**night, "start": _clock(22)},
                    ],
                    [0.32, 0.24],
                ),
                groupPrices=[{"group": g, "free": True} for g in umbrellas],
            ),
            t(
                "pool-car",
                "0.10 EUR/kWh",
                {"perKwh": _money(0.10)},
                groupPrices=[{"group": g, "free": True} for g in pools],
            ),
            t("depot-ac", "0.22 EUR/kWh", {"perKwh": _money(0.22)}),
            t("depot-dc", "0.28 EUR/kWh", {"perKwh": _money(0.28)}),
            t(
                "bus-depot-dc",
                "0.26 EUR/kWh",
                {"perKwh": _money(0.26)},
                windows=windows([{**night, "start": _clock(22)}], [0.21]),
            ),
            t(
                "residential-ac",
                "0.32 EUR/kWh",
                {"perKwh": _money(0.32)},
                windows=windows(
                    [{"name": "daytime", "days": list(WEEKDAYS), "start": _clock(9), "end": _clock(17)}, night],
                    [0.28, 0.25],
                ),
            ),
        ]

    def reservation_policies(self) -> list[Doc]:
        return [
            _doc(
                "ReservationPolicy",
                "fleet-reservations",
                {
                    "reservable": True,
                    "walkIns": True,
                    "allowedGroups": self.groups_with("fleet", 10),
                    "maxDurationMinutes": 240,
                    "graceMinutes": 30,
                    "bufferMinutes": 15,
                },
                description="Depot bays fleet drivers can book; free for walk-ins otherwise.",
            ),
            _doc(
                "ReservationPolicy",
                "paid-reservations",
                {
                    "reservable": True,
                    "walkIns": True,
                    "fee": _money(1),
                    "noShowFee": _money(7.5),
                    "maxDurationMinutes": 60,
                    "graceMinutes": 15,
                    "bufferMinutes": 10,
                },
            ),
            _doc(
                "ReservationPolicy",
                "accessible-bay",
                {
                    "reservable": True,
                    "walkIns": False,
                    "maxDurationMinutes": 180,
                    "graceMinutes": 20,
                },
                description="Accessible parking bay: by reservation only.",
            ),
            _doc(
                "ReservationPolicy",
                "hotel-guests",
                {
                    "reservable": True,
                    "walkIns": True,
                    "maxDurationMinutes": 720,
                    "graceMinutes": 60,
                    "bufferMinutes": 30,
                },
            ),
        ]

    def profiles(self, station_names: list[str]) -> list[Doc]:
        rng = self.rng
        legacy = sorted(rng.sample(station_names, min(6, len(station_names))))

        def p(name: str, priority: int, selector: Doc | None, settings: Doc, description: str = "") -> Doc:
            spec: Doc = {"priority": priority}
            if selector:
                spec["selector"] = selector
            spec["settings"] = settings
            return _doc("StationProfile", name, spec, description=description)

        return [
            p(
                "alfen",
                10,
                {"labels": {"vendor": "alfen"}},
                {
                    "ocppConfiguration": {"MeterValuesSampledData": f"{ENERGY},Power.Active.Import,Current.Import"},
                    "vendorConfiguration": {"PowerOptimizerEnabled": True, "BacklightLevel": 40},
                },
            ),
            p(
                "evbox",
                11,
                {"labels": {"vendor": "evbox"}},
                {"ocppConfiguration": {"HeartbeatInterval": 240, "MinimumStatusDuration": 5}},
            ),
            p("ecotap", 12, {"labels": {"vendor": "ecotap"}}, {"ocppConfiguration": {"ConnectionTimeOut": 120}}),
            p(
                "abb-dc",
                13,
                {"labels": {"vendor": "abb"}},
                {
                    "ocppConfiguration": {"MeterValueSampleInterval": 30, "StopTxnSampledData": f"{ENERGY},SoC"},
                    "maintenance": {"rebootWindows": [{"days": ["tue", "thu"], "start": _clock(3), "end": _clock(4)}]},
                },
            ),
            p(
                "kempower-hpc",
                14,
                {"labels": {"vendor": "kempower"}},
                {"ocppConfiguration": {"MeterValueSampleInterval": 15, "WebSocketPingInterval": 60}},
            ),
            p(
                "depot",
                50,
                {"labels": {"site-type": "depot"}},
                {
                    "offlineAuthorization": True,
                    "reservationPolicy": "fleet-reservations",
                    "maintenance": {"rebootDuringSessions": False, "maxRebootDeferralHours": 72},
                },
                description="Fleet depots: charge offline from the local list; bays bookable by fleet drivers.",
            ),
            p("workplace", 40, {"labels": {"site-type": "workplace"}}, {"offlineAuthorization": True}),
            p(
                "retail-night-maintenance",
                30,
                {"labels": {"site-type": "retail"}},
                {"maintenance": {"rebootWindows": [{"days": list(ALL_DAYS), "start": _clock(23), "end": _clock(7)}]}},
            ),
            p(
                "beta-firmware",
                100,
                {
                    "labels": {"firmware-channel": "beta", "vendor": "alfen"},
                    "boot": {"vendor": "Alfen*", "firmware": "7.*"},
                },
                {
                    "driftWarnOnly": ["MeterValueSampleInterval", "HeartbeatInterval"],
                    "ocppConfiguration": {"HeartbeatInterval": 120},
                },
            ),
            p(
                "legacy-security",
                200,
                {"names": legacy},
                {"securityProfile": 1},
                description="Chargers whose firmware cannot do TLS yet.",
            ),
            p(
                "quiet-hours",
                20,
                None,
                {"maintenance": {"rebootWindows": [{"days": ["sun"], "start": _clock(4), "end": _clock(5)}]}},
                description="Applied by name from spec.profiles.",
            ),
        ]


def _write(out_dir: Path, rel: str, docs: Sequence[Doc], header: str) -> None:
    path = out_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_yaml(docs, header), encoding="utf-8")


def _use_every_tariff(tariffs: list[Doc], station_files: list[tuple[str, list[Doc], str]], used: set[str]) -> None:
    """Small repos have few sites: price one EVSE apart with each tariff no site kind picked."""
    unused = [t["metadata"]["name"] for t in tariffs if t["metadata"]["name"] not in used]
    if not unused:
        return
    stations = [d for _, docs, _ in station_files for d in docs]
    step = max(1, len(stations) // (len(unused) + 1))
    for i, name in enumerate(unused):
        want_dc = name.endswith("-dc")
        candidates = stations[(i + 1) * step - 1 :] + stations
        for st in candidates:
            evse = st["spec"]["evses"][-1]
            if "tariff" in evse:
                continue
            if want_dc == any(p["powerType"] == "DC" for p in evse["plugs"]):
                break
        else:
            st = stations[((i + 1) * step - 1) % len(stations)]
            evse = st["spec"]["evses"][-1]
        evse["tariff"] = name
        used.add(name)


def generate(out_dir: Path, stations: int = 10_000, cards: int = 50_000, groups: int = 200, seed: int = 1) -> None:
    """Write a valid owner repository of the given size to ``out_dir`` (created if missing)."""
    gen = _Gen(stations, cards, groups, seed)
    gen.make_groups()
    gen.distribute_cards()
    out_dir.mkdir(parents=True, exist_ok=True)
    station_files = gen.stations()
    tariffs = gen.tariffs()
    _use_every_tariff(tariffs, station_files, gen.used_tariffs)
    station_names = [d["metadata"]["name"] for _, docs, _ in station_files for d in docs]
    _write(out_dir, "owner.yaml", [gen.owner()], "The owner: identity, billing and station defaults.")
    _write(out_dir, "tariffs.yaml", tariffs, "Tariffs. Prices include 21 % VAT.")
    _write(out_dir, "profiles.yaml", gen.profiles(station_names), "Station profiles (templates), selected by labels.")
    _write(out_dir, "reservation-policies.yaml", gen.reservation_policies(), "Reservation policies.")
    for rel, docs, header in gen.group_files():
        _write(out_dir, rel, docs, header)
    for rel, docs, header in gen.card_files():
        _write(out_dir, rel, docs, header)
    for rel, docs, header in station_files:
        _write(out_dir, rel, docs, header)


# --------------------------------------------------------------------------------------------
# Self-check: schemas (jsonschema_rs + yaml_rs) and the cross-document rules relied upon
# --------------------------------------------------------------------------------------------

KIND_SCHEMAS = {
    "Owner": "owner.json",
    "Station": "station.json",
    "StationProfile": "stationprofile.json",
    "Tariff": "tariff.json",
    "AccessGroup": "accessgroup.json",
    "CardList": "cardlist.json",
    "ReservationPolicy": "reservationpolicy.json",
}


def yaml_files(repo: Path) -> list[Path]:
    return sorted(p for p in repo.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def _load_docs(path: Path) -> list[Any]:
    import yaml_rs

    text = path.read_text(encoding="utf-8")
    data = yaml_rs.loads(text, parse_datetime=False)
    if isinstance(data, list) and re.search(r"^---", text, re.MULTILINE):
        return data
    return [data]


def check(repo: Path, *, cross_check_pyyaml: bool = False) -> list[str]:
    """Problems found in ``repo`` (empty when valid)."""
    import jsonschema_rs

    common = json.loads((SCHEMA_DIR / "common.json").read_text(encoding="utf-8"))
    registry = jsonschema_rs.Registry([(common["$id"], common)])
    validators = {
        kind: jsonschema_rs.validator_for(json.loads((SCHEMA_DIR / f).read_text(encoding="utf-8")), registry=registry)
        for kind, f in KIND_SCHEMAS.items()
    }
    problems: list[str] = []
    by_kind: dict[str, dict[str, Doc]] = {k: {} for k in KIND_SCHEMAS}
    for path in yaml_files(repo):
        rel = path.relative_to(repo)
        docs = _load_docs(path)
        if cross_check_pyyaml:
            import yaml

            with path.open("rb") as fh:
                other = list(yaml.load_all(fh, Loader=yaml.CSafeLoader))
            if other != docs:
                problems.append(f"{rel}: PyYAML and yaml_rs read different content")
        for i, doc in enumerate(docs):
            where = f"{rel}#{i}"
            kind = doc.get("kind") if isinstance(doc, dict) else None
            if kind not in validators:
                problems.append(f"{where}: unknown kind {kind!r}")
                continue
            for err in validators[kind].iter_errors(doc):
                problems.append(f"{where}: {err.message} at {list(err.instance_path)}")
            name = doc["metadata"]["name"]
            if name in by_kind[kind]:
                problems.append(f"{where}: duplicate {kind} {name}")
            by_kind[kind][name] = doc
    problems.extend(_check_semantics(by_kind))
    return problems


def _check_semantics(by_kind: dict[str, dict[str, Doc]]) -> Iterable[str]:
    owners = list(by_kind["Owner"].values())
    if len(owners) != 1:
        yield f"expected exactly one Owner, found {len(owners)}"
        return
    owner = owners[0]["spec"]
    plans = {p["name"] for p in owner["plans"]}
    groups, tariffs = by_kind["AccessGroup"], by_kind["Tariff"]
    policies, profiles = by_kind["ReservationPolicy"], by_kind["StationProfile"]
    used: dict[str, set[str]] = {"tariff": set(), "policy": set(), "group": set(), "profile": set()}

    def ref(kind: str, value: str, table: dict[str, Doc], where: str) -> Iterable[str]:
        used[kind].add(value)
        if value not in table:
            yield f"{where}: unknown {kind} {value}"

    def settings(s: Doc, where: str) -> Iterable[str]:
        if "tariff" in s:
            yield from ref("tariff", s["tariff"], tariffs, where)
        if "reservationPolicy" in s:
            yield from ref("policy", s["reservationPolicy"], policies, where)
        access = s.get("access")
        if access:
            if access["mode"] == "restricted" and not access.get("groups"):
                yield f"{where}: restricted access without groups"
            for g in access.get("groups", []):
                yield from ref("group", g, groups, where)

    yield from settings(owner.get("defaults", {}), "Owner defaults")
    identities: set[str] = set()
    for name, doc in by_kind["Station"].items():
        spec, where = doc["spec"], f"Station {name}"
        yield from settings(spec, where)
        ident = spec["identity"].upper()
        if ident in identities:
            yield f"{where}: duplicate identity {spec['identity']}"
        identities.add(ident)
        if "activation" in spec and spec["activation"]["plan"] not in plans:
            yield f"{where}: unknown plan {spec['activation']['plan']}"
        if spec.get("visibility") == "public" and not all(k in spec for k in ("activation", "coordinates", "address")):
            yield f"{where}: public station without activation, coordinates or address"
        for g in spec.get("publishAllowedTo", []):
            yield from ref("group", g, groups, where)
        for pr in spec.get("profiles", []):
            yield from ref("profile", pr, profiles, where)
        ids = [e["id"] for e in spec["evses"]]
        if len(set(ids)) != len(ids):
            yield f"{where}: duplicate EVSE ids"
        for evse in spec["evses"]:
            yield from settings(evse, f"{where} EVSE {evse['id']}")
    station_names = set(by_kind["Station"])
    for name, doc in profiles.items():
        yield from settings(doc["spec"]["settings"], f"StationProfile {name}")
        for s in doc["spec"].get("selector", {}).get("names", []):
            if s not in station_names:
                yield f"StationProfile {name}: unknown station {s}"
    for name, doc in tariffs.items():
        for gp in doc["spec"].get("groupPrices", []):
            yield from ref("group", gp["group"], groups, f"Tariff {name}")
    for name, doc in policies.items():
        for g in doc["spec"].get("allowedGroups", []):
            yield from ref("group", g, groups, f"ReservationPolicy {name}")
    for name, doc in groups.items():
        for g in doc["spec"].get("includes", []):
            yield from ref("group", g, groups, f"AccessGroup {name}")
    yield from _check_cycles(groups)
    tags: set[str] = set()
    cards_of: dict[str, int] = {}
    card_sources = [(n, d["spec"].get("cards", [])) for n, d in groups.items()]
    for name, doc in by_kind["CardList"].items():
        yield from ref("group", doc["spec"]["group"], groups, f"CardList {name}")
        card_sources.append((doc["spec"]["group"], doc["spec"]["cards"]))
    for group, cards in card_sources:
        cards_of[group] = cards_of.get(group, 0) + len(cards)
        for card in cards:
            tag = card["idTag"].upper()
            if tag in tags:
                yield f"duplicate idTag {card['idTag']}"
            tags.add(tag)
            if "validUntil" in card:
                try:
                    date.fromisoformat(card["validUntil"])
                except ValueError:
                    yield f"invalid validUntil {card['validUntil']}"
    for name in groups:
        if not cards_of.get(name):
            yield f"AccessGroup {name}: no cards"
    for kind, table in (("tariff", tariffs), ("policy", policies)):
        for name in table:
            if name not in used[kind]:
                yield f"{kind} {name} is never used"


def _check_cycles(groups: dict[str, Doc]) -> Iterable[str]:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str) -> bool:
        if state.get(name) == 2 or name not in groups:
            return False
        if state.get(name) == 1:
            return True
        state[name] = 1
        cyclic = any(visit(inc) for inc in groups[name]["spec"].get("includes", []))
        state[name] = 2
        return cyclic

    for name in groups:
        if visit(name):
            yield f"AccessGroup {name}: include cycle"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--stations", type=int, default=10_000)
    ap.add_argument("--cards", type=int, default=50_000)
    ap.add_argument("--groups", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="1,000 stations, 5,000 cards, 20 groups")
    ap.add_argument("--check", action="store_true", help="validate the result against schemas/ afterwards")
    args = ap.parse_args(argv)
    if args.quick:
        args.stations, args.cards, args.groups = 1_000, 5_000, 20
    generate(args.out_dir, args.stations, args.cards, args.groups, args.seed)
    files = yaml_files(args.out_dir)
    size = sum(p.stat().st_size for p in files)
    print(f"wrote {len(files)} files, {size / 1e6:.1f} MB to {args.out_dir}")
    if args.check:
        problems = check(args.out_dir, cross_check_pyyaml=True)
        for p in problems[:50]:
            print(p)
        print(f"check: {len(problems)} problem(s)")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
