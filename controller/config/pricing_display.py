"""The price display a charger shows (OCA California Pricing `DefaultPrice`), rendered from a tariff.

`DefaultPrice` is a configuration value (max 500 characters as sent) holding JSON:
``{"priceText": ..., "priceTextOffline": ..., "chargingPrice": {"kWhPrice": .., "hourPrice": .., "flatFee": ..}}``.
Decimals are written exactly (never through float), and the JSON is ASCII-escaped, as it goes on the wire,
so the length checked is the length sent. A tariff with time windows has one value per window; the
reconciler pushes the one in force.

Boundary: pure; tariff in, strings out.
"""

from __future__ import annotations

import json
from decimal import Decimal

from . import model as m

MAX_CONFIG_VALUE = 500


def _num(d: Decimal) -> str:
    text = format(d.normalize(), "f") if d != d.to_integral_value() else format(d.quantize(Decimal(1)), "f")
    return text


def default_text(t: m.Tariff, p: m.PriceComponents) -> str:
    cur = t.currency
    parts = []
    if p.per_kwh:
        parts.append(f"{_num(p.per_kwh)} {cur}/kWh")
    if p.per_hour:
        parts.append(f"{_num(p.per_hour)} {cur}/h")
    if p.session_fee:
        parts.append(f"{_num(p.session_fee)} {cur} per session")
    if p.idle and p.idle.per_hour:
        grace = f" after {p.idle.grace_minutes} min" if p.idle.grace_minutes else ""
        parts.append(f"idle {_num(p.idle.per_hour)} {cur}/h{grace}")
    return ", ".join(parts) if parts else "Free"


def default_price_value(t: m.Tariff, window: m.TariffWindow | None = None) -> str:
    """The DefaultPrice configuration value for the base prices, or for one window."""
    p = window.price.over(t.price) if window else t.price
    text = t.display_text if (t.display_text and window is None) else default_text(t, p)
    offline = t.display_text_offline or text
    charging = {
        "kWhPrice": p.per_kwh or Decimal(0),
        "hourPrice": p.per_hour or Decimal(0),
        "flatFee": p.session_fee or Decimal(0),
    }
    body = ",".join(f'"{k}":{_num(v)}' for k, v in charging.items())
    return (
        '{"priceText":' + json.dumps(text) + ',"priceTextOffline":' + json.dumps(offline)
        + ',"chargingPrice":{' + body + "}}"
    )


def all_values(t: m.Tariff) -> dict[str, str]:
    """Every DefaultPrice value the tariff can need: 'base' and one per window."""
    out = {"base": default_price_value(t)}
    for w in t.windows:
        out[w.name] = default_price_value(t, w)
    return out
