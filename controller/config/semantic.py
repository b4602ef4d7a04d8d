"""Semantic checks across documents: references, uniqueness, money, map, OCPP and reservation rules.

Runs on the model objects built from schema-valid documents and reports every problem (never only the
first), each tied to a document and field path so `positions` can name the line. idTags are masked in
every message.

Boundary: pure; model in, diagnostics out.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence

from . import model as m
from .diagnostics import Diagnostic, PathElem, mask_id_tag, suggest
from .effective import effective_station
from .ocpp16_keys import READ_ONLY_KEYS, WRITE_ONLY_KEYS, check_value, closest, lookup
from .pricing_display import MAX_CONFIG_VALUE, all_values
from .refdata import COUNTRIES, CURRENCY_MINOR_UNITS

Path = tuple[PathElem, ...]
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Checker:
    def __init__(self, diags: list[Diagnostic], broken: Mapping[str, set[str]] | None = None):
        self.diags = diags
        self.broken = broken or {}  # kind -> names of documents that failed their schema (no cascades)

    def err(self, code: str, message: str, src: m.Src, path: Path, hint: str | None = None,
            severity: str = "error", at_key: bool = False) -> None:
        self.diags.append(Diagnostic(code, message, file=src.file, doc=src.doc, path=path, hint=hint,
                                     severity=severity, at_key=at_key))  # type: ignore[arg-type]

    def ref(self, kind: str, name: str | None, known: Iterable[str], src: m.Src, path: Path) -> None:
        if name is None:
            return
        names = known if isinstance(known, Mapping | set | frozenset) else set(known)
        if name in names or name in self.broken.get(kind, ()):
            return
        near = suggest(name, list(names))
        hint = f'did you mean "{near}"?' if near else (
            f"declare it, or use one of: {', '.join(sorted(names)[:8])}" if names
            else f"no {kind} is declared yet")
        self.err("unknown-reference", f"unknown {kind} {name!r}", src, path, hint)


@functools.cache
def _zone_ok(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
        return True
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False


def check_timezone(c: Checker, tz: str | None, src: m.Src, path: Path) -> None:
    if tz is None or _zone_ok(tz):
        return
    near = suggest(tz, sorted(zoneinfo.available_timezones()))
    c.err("invalid-timezone", f"unknown time zone {tz!r}", src, path,
          f'did you mean "{near}"?' if near else "use an IANA name such as Europe/Amsterdam")


def check_currency(c: Checker, cur: str, src: m.Src, path: Path) -> None:
    if cur not in CURRENCY_MINOR_UNITS:
        near = suggest(cur, list(CURRENCY_MINOR_UNITS))
        c.err("invalid-currency", f"{cur!r} is not an ISO 4217 currency", src, path,
              f'did you mean "{near}"?' if near else "use a code such as EUR")


def check_country(c: Checker, country: str, src: m.Src, path: Path) -> None:
    if country not in COUNTRIES:
        near = suggest(country, sorted(COUNTRIES))
        c.err("invalid-country", f"{country!r} is not an ISO 3166-1 alpha-2 country", src, path,
              f'did you mean "{near}"?' if near else "use a code such as NL")


def check_settings(c: Checker, st: m.StationSettings, ds: m.DesiredState, src: m.Src, base: Path) -> None:
    c.ref("tariff", st.tariff, ds.tariffs, src, (*base, "tariff"))
    c.ref("reservation policy", st.reservation_policy, ds.reservation_policies, src,
          (*base, "reservationPolicy"))
    check_access(c, st.access, ds, src, (*base, "access"))
    for key, value in (st.ocpp_configuration or {}).items():
        check_ocpp_key(c, key, value, src, (*base, "ocppConfiguration", key))
    for key, value in (st.vendor_configuration or {}).items():
        if len(value) > MAX_CONFIG_VALUE:
            c.err("ocpp-value-too-long", f"value of {key} is {len(value)} characters; OCPP allows 500",
                  src, (*base, "vendorConfiguration", key), "shorten the value")


def check_access(c: Checker, a: m.Access | None, ds: m.DesiredState, src: m.Src, path: Path) -> None:
    if a is None:
        return
    if a.restricted and not a.groups:
        c.err("restricted-without-groups", "restricted access names no access group, so nobody could charge",
              src, path, "add groups: [<group>] or use mode: public")
    if not a.restricted and a.groups:
        c.err("public-with-groups", "groups are ignored when access mode is public", src, (*path, "groups"),
              "use mode: restricted to limit charging to these groups", severity="warning")
    for i, g in enumerate(a.groups):
        c.ref("access group", g, ds.groups, src, (*path, "groups", i))


def check_ocpp_key(c: Checker, key: str, value: str, src: m.Src, path: Path) -> None:
    upper = key.upper()
    if upper in WRITE_ONLY_KEYS:
        c.err("ocpp-write-only-key", f"{key} cannot be set in ocppConfiguration", src, path,
              "reference the secret with spec.credentials.authorizationKey instead", at_key=True)
        return
    if upper == "SECURITYPROFILE":
        c.err("ocpp-managed-key", "SecurityProfile is managed by chargeops, step by step", src, path,
              "set securityProfile (the target) instead of the OCPP key", at_key=True)
        return
    if upper in READ_ONLY_KEYS:
        c.err("ocpp-read-only-key", f"{key} is read-only on OCPP 1.6 chargers: it reports a capability "
              "and cannot be set", src, path, "remove it from ocppConfiguration", at_key=True)
        return
    known = lookup(key)
    if known is None:
        near = closest(key)
        hint = f'did you mean "{near}"?' if near else None
        hint = (hint + " " if hint else "") + "vendor-specific keys go under vendorConfiguration"
        c.err("unknown-ocpp-key", f"{key!r} is not a standard OCPP 1.6 configuration key", src, path, hint,
              at_key=True)
        return
    problem = check_value(known, value)
    if len(value) > MAX_CONFIG_VALUE:
        c.err("ocpp-value-too-long", f"value of {key} is {len(value)} characters; OCPP 1.6 allows at most "
              f"{MAX_CONFIG_VALUE}", src, path, "shorten the value")
    elif problem:
        c.err("invalid-ocpp-value", problem, src, path)


def _duplicates(c: Checker, kind: str, items: Sequence[tuple[str, m.Src]], path: Path,
                code: str = "duplicate-name", show: bool = True) -> None:
    first: dict[str, m.Src] = {}
    for name, src in items:
        key = name.upper() if code == "duplicate-identity" else name
        if key in first:
            f = first[key]
            shown = f" {name!r}" if show else ""
            c.err(code, f"{kind}{shown} is declared twice (first in {f.file})", src, path,
                  f"rename or remove one of them ({f.file} document {f.doc + 1})")
        else:
            first[key] = src


def _minutes(hhmm: str) -> int:
    h, mm = hhmm.split(":")
    return int(h) * 60 + int(mm)


def week_intervals(days: Sequence[str], start: str, end: str) -> list[tuple[int, int]]:
    """A window as minute intervals on a 7-day week (monday 00:00 = 0); crossing midnight splits it."""
    s, e = _minutes(start), _minutes(end)
    out = []
    week = 7 * 1440
    for d in days:
        base = _DAYS.index(d) * 1440
        a, b = base + s, base + (e if e > s else e + 1440)
        if b <= week:
            out.append((a, b))
        else:
            out.append((a, week))
            out.append((0, b - week))
    return out


def check_tariff(c: Checker, t: m.Tariff, ds: m.DesiredState) -> None:
    src = t.src
    if t.currency != ds.owner.currency:  # an inherited currency is reported once, at the Owner
        check_currency(c, t.currency, src, ("spec", "currency"))
    if t.is_paid() and not ds.owner.billing.enabled:
        c.err("paid-tariff-needs-billing", f"tariff {t.name!r} charges money but Flex Billing is not enabled",
              src, ("spec", "price"), "set spec.billing.enabled: true in the Owner document, or make the "
              "tariff free")
    if t.min_price is not None and t.max_price is not None and t.min_price > t.max_price:
        c.err("min-above-max", f"minPrice {t.min_price} is above maxPrice {t.max_price}", src,
              ("spec", "minPrice"), "lower minPrice or raise maxPrice")
    seen: dict[str, int] = {}
    taken: list[tuple[int, int, str]] = []
    for i, w in enumerate(t.windows):
        if w.name in seen:
            c.err("duplicate-name", f"window {w.name!r} is declared twice in tariff {t.name!r}", src,
                  ("spec", "windows", i, "name"))
        seen[w.name] = i
        if w.start == w.end:
            c.err("empty-window", f"window {w.name!r} starts and ends at {w.start}", src,
                  ("spec", "windows", i), "give the window a different end time")
            continue
        for a, b in week_intervals(w.days, w.start, w.end):
            for a2, b2, other in taken:
                if a < b2 and a2 < b:
                    day = _DAYS[a // 1440 if a >= a2 else a2 // 1440]
                    c.err("window-overlap", f"window {w.name!r} overlaps window {other!r} (on {day})", src,
                          ("spec", "windows", i), "windows of one tariff must not overlap; adjust days, "
                          "start or end")
                    break
            else:
                continue
            break
        taken.extend((a, b, w.name) for a, b in week_intervals(w.days, w.start, w.end))
    groups_seen: set[str] = set()
    for i, g in enumerate(t.group_prices):
        c.ref("access group", g.group, ds.groups, src, ("spec", "groupPrices", i, "group"))
        if g.group in groups_seen:
            c.err("duplicate-name", f"group {g.group!r} has two price entries", src,
                  ("spec", "groupPrices", i, "group"))
        groups_seen.add(g.group)
    for label, value in all_values(t).items():
        if len(value) > MAX_CONFIG_VALUE:
            where = "base prices" if label == "base" else f"window {label!r}"
            c.err("default-price-too-long", f"the charger price display (DefaultPrice) for the {where} is "
                  f"{len(value)} characters as sent; OCPP allows {MAX_CONFIG_VALUE}", src,
                  ("spec", "displayText"), "shorten displayText / displayTextOffline")


def check_groups(c: Checker, ds: m.DesiredState) -> None:
    for g in ds.groups.values():
        for i, inc in enumerate(g.includes):
            c.ref("access group", inc, ds.groups, g.src, ("spec", "includes", i))
    # cycles: depth-first search, report each cycle once at the include that closes it
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        grp = ds.groups[name]
        for i, inc in enumerate(grp.includes):
            if inc not in ds.groups:
                continue
            if state.get(inc) == 1:
                cycle = [*stack[stack.index(inc):], inc]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    c.err("group-cycle", "access groups include each other in a cycle: " + " -> ".join(cycle),
                          grp.src, ("spec", "includes", i), f"remove {inc!r} from the includes of {name!r}")
            elif state.get(inc) is None:
                visit(inc, [*stack, inc])
        state[name] = 2

    for name in sorted(ds.groups):
        if name not in state:
            visit(name, [name])


def check_station(c: Checker, st: m.Station, ds: m.DesiredState) -> None:
    src = st.src
    check_settings(c, st.settings, ds, src, ("spec",))
    plans = {p.name for p in ds.owner.plans}
    if st.activation is not None:
        c.ref("plan", st.activation.plan, plans, src, ("spec", "activation", "plan"))
    check_timezone(c, st.timezone, src, ("spec", "timezone"))
    if st.address is not None:
        check_country(c, st.address.country, src, ("spec", "address", "country"))
    for i, p in enumerate(st.profiles):
        c.ref("station profile", p, ds.profiles, src, ("spec", "profiles", i))
    for i, g in enumerate(st.publish_allowed_to):
        c.ref("access group", g, ds.groups, src, ("spec", "publishAllowedTo", i))
    if st.visibility == "private" and not st.publish_allowed_to:
        c.err("private-without-audience", "private station names no publishAllowedTo group: no driver will "
              "see it on a map", src, ("spec", "visibility"), "add publishAllowedTo: [<group>] or use hidden",
              severity="warning")
    if st.visibility == "public":
        missing = []
        if not st.activated:
            missing.append("activation (activated)")
        if st.coordinates is None:
            missing.append("coordinates")
        if st.address is None:
            missing.append("address")
        if missing:
            c.err("public-station-incomplete", f"a public station needs {', '.join(missing)} to appear on the "
                  "map", src, ("spec", "visibility"), "add them, or use visibility: private or hidden")
    seen: dict[int, int] = {}
    for i, e in enumerate(st.evses):
        if e.id in seen:
            c.err("duplicate-evse", f"EVSE id {e.id} is used twice in station {st.name!r}", src,
                  ("spec", "evses", i, "id"), "each EVSE is one OCPP connectorId: give it a unique id")
        seen[e.id] = i
        c.ref("tariff", e.tariff, ds.tariffs, src, ("spec", "evses", i, "tariff"))
        c.ref("reservation policy", e.reservation_policy, ds.reservation_policies, src,
              ("spec", "evses", i, "reservationPolicy"))
        check_access(c, e.access, ds, src, ("spec", "evses", i, "access"))
    # the effective result, with and without profiles that only the boot information can select
    variants = [effective_station(ds, st)]
    if variants[0].pending_boot_profiles:
        variants.append(effective_station(ds, st, assume_boot_profiles=True))
    reported: set[str] = set()
    for eff in variants:
        for key, declared, derived, why in eff.conflicts:
            if key in reported:
                continue
            reported.add(key)
            c.err("managed-key-conflict", f"{key} is set to {declared!r} but chargeops must keep it {derived!r} "
                  f"because {why}", src, _declared_key(st, key), f"remove {key} from ocppConfiguration (station, "
                  f"profiles {', '.join(eff.profiles) or '-'} or owner defaults)", at_key=True)
        if eff.offline_authorization and "offline" not in reported:
            for i, ee in enumerate(eff.evses):
                pol = ds.reservation_policies.get(ee.reservation_policy or "")
                if pol is not None and pol.reservation_only:
                    reported.add("offline")
                    c.err("reservation-offline-auth", f"EVSE {ee.id} can only be used with a reservation "
                          f"(policy {pol.name!r}) but offline authorization is on: the charger would let cards "
                          "in without the reservation", src, ("spec", "evses", i),
                          "set offlineAuthorization: false for this station, or allow walkIns in the policy")
                    break
        if eff.security_profile >= 1 and st.authorization_key is None and "creds" not in reported:
            reported.add("creds")
            where = ("spec", "securityProfile") if st.settings.security_profile is not None else ("spec",)
            c.err("missing-credentials", f"security profile {eff.security_profile} needs an AuthorizationKey",
                  src, where, "add credentials: {authorizationKey: {env: <VARIABLE>}}", at_key=True)


def _declared_key(st: m.Station, key: str) -> Path:
    """Where the station itself declares an OCPP key (any spelling), else its spec (a profile or default)."""
    for k in st.settings.ocpp_configuration or {}:
        if k.upper() == key.upper():
            return ("spec", "ocppConfiguration", k)
    return ("spec",)


def check_policy(c: Checker, p: m.ReservationPolicy, ds: m.DesiredState) -> None:
    for i, g in enumerate(p.allowed_groups):
        c.ref("access group", g, ds.groups, p.src, ("spec", "allowedGroups", i))
    for field, amount in (("fee", p.fee), ("noShowFee", p.no_show_fee)):
        if amount > 0 and not ds.owner.billing.enabled:
            c.err("paid-tariff-needs-billing", f"reservation policy {p.name!r} charges a {field} but Flex "
                  "Billing is not enabled", p.src, ("spec", field),
                  "set spec.billing.enabled: true in the Owner document, or remove the fee")


def check_profile(c: Checker, p: m.StationProfile, ds: m.DesiredState) -> None:
    check_settings(c, p.settings, ds, p.src, ("spec", "settings"))
    for i, n in enumerate(p.names or ()):
        c.ref("station", n, ds.stations, p.src, ("spec", "selector", "names", i))


def check_owner(c: Checker, o: m.Owner, ds: m.DesiredState) -> None:
    src = o.src
    check_timezone(c, o.timezone, src, ("spec", "timezone"))
    check_currency(c, o.currency, src, ("spec", "currency"))
    check_country(c, o.country, src, ("spec", "country"))
    check_country(c, o.ocpi_country_code, src, ("spec", "ocpi", "countryCode"))
    _duplicates(c, "plan", [(p.name, src) for p in o.plans], ("spec", "plans"))
    waves = o.rollout.waves
    if list(waves) != sorted(waves) or waves[-1] != 100:
        c.err("invalid-value", "rollout waves must grow and end at 100 (cumulative percentages)", src,
              ("spec", "rollout", "waves"), "e.g. waves: [10, 50, 100]")
    check_settings(c, o.defaults, ds, src, ("spec", "defaults"))


def check_cards(c: Checker, card_docs: Sequence[tuple[m.Card, Path]], ds: m.DesiredState) -> None:
    first: dict[str, m.Card] = {}
    for card, path in card_docs:
        key = card.key
        prev = first.get(key)
        if prev is not None:
            c.err("duplicate-idtag", f"idTag {mask_id_tag(card.id_tag)} is declared twice (idTags are compared "
                  f"case-insensitively; first in {prev.src.file}, group {prev.group!r})", card.src, path,
                  "a card belongs to one group: remove one entry, or include one group in the other")
        else:
            first[key] = card


def check_all(ds: m.DesiredState, parts: Mapping[str, Sequence[object]],
              card_docs: Sequence[tuple[m.Card, Path]], invalid_dates: Sequence[tuple[m.Src, Path, str]],
              diags: list[Diagnostic], broken: Mapping[str, set[str]] | None = None) -> None:
    c = Checker(diags, broken)
    check_owner(c, ds.owner, ds)
    for kind, items in parts.items():
        named = [(getattr(x, "name"), getattr(x, "src")) for x in items]  # noqa: B009
        _duplicates(c, kind, named, ("metadata", "name"))
    stations = parts.get("station", ())
    _duplicates(c, "station identity", [(s.identity, s.src) for s in stations  # type: ignore[attr-defined]
                                        ], ("spec", "identity"), code="duplicate-identity")
    for t in ds.tariffs.values():
        check_tariff(c, t, ds)
    check_groups(c, ds)
    for cl in parts.get("card list", ()):
        c.ref("access group", cl.group, ds.groups, cl.src, ("spec", "group"))  # type: ignore[attr-defined]
    check_cards(c, card_docs, ds)
    for src, path, text in invalid_dates:
        c.err("invalid-date", f"{text!r} is not a calendar date", src, path, 'use YYYY-MM-DD, e.g. "2027-12-31"')
    for pol in ds.reservation_policies.values():
        check_policy(c, pol, ds)
    for prof in ds.profiles.values():
        check_profile(c, prof, ds)
    for st in ds.stations.values():
        check_station(c, st, ds)
