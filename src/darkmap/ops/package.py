"""Per-country packages: what one country's agency needs to act, as it may see it.

``build_package(ws, by, country, out)`` writes ``package.json`` (machine-readable) and
``package.html`` (for reading) into ``out``: the personas the assess stage attributes to
the country (with the jurisdiction evidence), their accounts and listings with the drug
assessment (each with the capture it came from), the operational records the acting
user may read that concern those personas, accounts or listings or that sit in that
country, the fentanyl marks, and the task force's deconfliction contacts. Every fact
carries its provenance. Only the acting user's grants decide what operational records
go in; the package is audited.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from darkmap.errors import BadInputError
from darkmap.ops.access import acting
from darkmap.ops.audit import log
from darkmap.ops.records import fentanyl_marks, read_records
from darkmap.store import operations as store
from darkmap.store.operations import Space
from darkmap.store.workspace import utcnow

__all__ = ["build_package"]


def _personas(ws: Space, country: str) -> list[dict[str, Any]]:
    """The personas attributed to ``country`` with accounts and listings."""
    found = store.country_personas(ws.con, country)
    listings = store.persona_listings(ws.con, [r[0] for r in found])
    by: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for pid, acc, lid, substance, cls, fent, capture, source in listings:
        entry = by[pid][acc]
        if lid is not None:
            entry.append({"listing": lid, "substance": substance, "drug_class": cls,
                          "fentanyl_risk": fent,
                          "provenance": {"capture_sha256": capture, "source": source}})
    out = []
    for pid, label, conf, evidence, method in found:
        out.append({
            "persona": pid, "label": label,
            "jurisdiction": {"country": country, "confidence": conf,
                             "evidence": json.loads(evidence) if evidence else [],
                             "provenance": {"method": method}},
            "accounts": [{"account": a, "listings": ls} for a, ls in sorted(by[pid].items())]})
    return out


def build_package(ws: Space, by: str, country: str, out: Path) -> dict[str, int]:
    """Write the package of ``country`` as ``by`` sees it into the folder ``out``."""
    country = country.upper()
    if len(country) != 2 or not country.isalpha():
        raise BadInputError(f"country {country!r}: give an ISO 3166 two-letter code")
    actor = acting(ws.con, by)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInputError(f"{out}: give a new or empty folder for the package")
    personas = _personas(ws, country)
    refs = {("persona", p["persona"]) for p in personas}
    refs |= {("account", a["account"]) for p in personas for a in p["accounts"]}
    refs |= {("listing", x["listing"]) for p in personas for a in p["accounts"]
             for x in a["listings"]}
    recs = [r for r in read_records(ws, by)
            if r.row.country == country or refs & set(r.links)]
    marks = [m for m in fentanyl_marks(ws, by)
             if (m["ref_kind"], m["ref_id"]) in refs
             or m["buy"] in {r.row.record_id for r in recs}]
    bundle = {
        "country": country, "built_by": by, "agency": actor.agency_id,
        "built_at": utcnow().isoformat(), "personas": personas,
        "records": [r.as_dict() for r in recs], "fentanyl_marks": marks,
        "contacts": [a._asdict() for a in store.agencies(ws.con)],
        "not_included": ["wallets and cash-out points", "FollowTheMoney entities"],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "package.json").write_text(json.dumps(bundle, indent=2, default=str,
                                                 ensure_ascii=False), encoding="utf-8")
    (out / "package.html").write_text(_html(bundle), encoding="utf-8")
    log(ws.con, by, "package.build", country=country, records=[r.row.record_id for r in recs])
    return {"personas": len(personas), "records": len(recs), "fentanyl_marks": len(marks)}


def _html(bundle: dict[str, Any]) -> str:
    """The package as one HTML page (every value escaped)."""
    e = html.escape
    cc = e(bundle["country"])
    head = (f"<!doctype html><meta charset=utf-8><title>darkmap package {cc}</title>"
            f"<h1>Package for {cc}</h1><p>Built by {e(bundle['built_by'])} "
            f"({e(bundle['agency'])}) at {e(bundle['built_at'])} UTC: only what this user "
            "may see.</p><h2>Personas</h2><ul>")
    parts = [head]
    for p in bundle["personas"]:
        j = p["jurisdiction"]
        parts.append(f"<li>{e(str(p['persona']))} {e(str(p['label'] or ''))}: "
                     f"confidence {j['confidence']:.2f}, evidence "
                     f"<code>{e(json.dumps(j['evidence'])[:2000])}</code><ul>")
        for a in p["accounts"]:
            ls = ", ".join(f"{e(str(x['listing']))} ({e(str(x['substance']))}"
                           f"{', fentanyl risk' if x['fentanyl_risk'] else ''})"
                           for x in a["listings"])
            parts.append(f"<li>{e(str(a['account']))}: {ls}</li>")
        parts.append("</ul></li>")
    parts.append("</ul><h2>Operational records</h2><ul>")
    for r in bundle["records"]:
        parts.append(f"<li>{e(r['record_id'])} {e(r['kind'])} ({e(r['agency_id'])}, "
                     f"{e(str(r['created_at']))}): {e(json.dumps(r['data'], default=str))}"
                     f" <i>provenance: {e(r['provenance'])}</i></li>")
    parts.append("</ul><h2>Fentanyl marks</h2><ul>")
    parts += [f"<li>{e(m['ref_kind'])} {e(m['ref_id'])}: {e(m['substance'])} (buy "
              f"{e(m['buy'])})</li>" for m in bundle["fentanyl_marks"]]
    parts.append("</ul><h2>Deconfliction contacts</h2><ul>")
    parts += [f"<li>{e(a['agency_id'])} ({e(a['country'])}): {e(a['contact'])}</li>"
              for a in bundle["contacts"]]
    parts.append("</ul>")
    return "".join(parts)
