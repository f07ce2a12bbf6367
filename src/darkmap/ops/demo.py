"""The demo's operation (``darkmap demo``, stage ``operation``): two agencies of two
countries act on a simulated persona, through the same library calls an analyst makes.

The lead agency sits in the country the assess stage attributes the persona to (the
United States when it has none), the partner in another. They share a case (its team:
one officer of each); the lead records a controlled buy of the persona's listing whose
lab result shows fentanyl (which marks the listing and the persona), the parcel it came
in, a seizure and an arrest tied to the persona; the partner submits the persona as a
selector of its own, and both agencies get a deconfliction notice; a second team of the
lead agency, whose case compartment and the first do not read each other, submits it too,
and both teams are told whom to call (an overlap within one agency). Each country gets its
package, and the reported figures of past operations are imported when the real data
holds them. Everything is audited like any other use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from darkmap.errors import WorkspaceStateError
from darkmap.ops import access, deconflict, package, records, totals
from darkmap.ops.records import Arrest, Buy, Case, CryptoItem, LabResult, Parcel, Seizure
from darkmap.store import operations as store
from darkmap.store.operations import Space

__all__ = ["AGENCY_OF", "DEMO_OPERATION", "DemoOperation", "run_demo_operation"]

DEMO_OPERATION = "Demo-Nightjar"
"""The name the demo's records carry as their operation."""
AGENCY_OF = {"US": ("fbi", "Federal Bureau of Investigation"),
             "DE": ("bka", "Bundeskriminalamt"), "GB": ("nca", "National Crime Agency"),
             "NL": ("politie", "Politie Nederland"), "AU": ("afp", "Australian Federal Police"),
             "CA": ("rcmp", "Royal Canadian Mounted Police")}
"""A plausible agency for the demo's countries (others get ``police-cc``)."""


@dataclass(frozen=True)
class DemoOperation:
    """What the demo recorded: the lead user (the report reads as them), the records,
    notices, packages and figures."""

    lead_user: str
    partner_user: str
    users: tuple[tuple[str, str, str, str], ...]
    """(agency, country, user, role) of every operational user the demo created."""
    countries: tuple[str, str]
    persona: str
    records: dict[str, str]
    notices: int
    packages: dict[str, dict[str, int]]
    reported: dict[str, int]
    totals: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """Plain values for the stage line."""
        return {"lead": self.lead_user, "partner": self.partner_user,
                "users": [list(u) for u in self.users],
                "countries": list(self.countries), "persona": self.persona,
                "records": len(self.records), "notices": self.notices,
                "packages": {cc: p["records"] for cc, p in self.packages.items()},
                "fentanyl_kg": self.totals.get("fentanyl_kg"),
                "arrests": self.totals.get("arrests")}


def _agency(cc: str) -> tuple[str, str]:
    return AGENCY_OF.get(cc, (f"police-{cc.lower()}", f"Police ({cc})"))


def _setup(ws: Space, lead_cc: str, partner_cc: str
           ) -> tuple[str, str, tuple[tuple[str, str, str, str], ...]]:
    """Agencies, their admins and officers; the users (lead, partner) who act, and every
    user made: (agency, country, user, role)."""
    con = ws.con
    officers, made = [], []
    for i, cc in enumerate((lead_cc, partner_cc)):
        agency, name = _agency(cc)
        admin = f"{agency}-admin"
        access.add_agency(con, "demo" if i == 0 else f"{_agency(lead_cc)[0]}-admin", agency,
                          name, cc, f"{name} deconfliction desk, +00 555 01{i:02d}")
        access.add_user(con, "demo" if i == 0 else f"{_agency(lead_cc)[0]}-admin", admin,
                        agency, "admin")
        access.add_user(con, admin, f"{agency}-officer", agency, "officer")
        officers.append(f"{agency}-officer")
        made += [(agency, cc, admin, "admin"), (agency, cc, f"{agency}-officer", "officer")]
    return officers[0], officers[1], tuple(made)


def run_demo_operation(ws: Space, markets: list[str], packages_dir: Path,
                       reported_csv: Path | None = None,
                       ftm: package.FtmWriter | None = None) -> DemoOperation:
    """Record the demo operation against a persona on one of the (simulated) ``markets``;
    write each country's package under ``packages_dir / CC`` (with ``ftm``: its FtM
    entities file)."""
    target = store.demo_target(ws.con, markets)
    if target is None:
        raise WorkspaceStateError("no persona with a listing on the simulated markets "
                                  "(run link and assess first)")
    persona, account, listing, substance, price, country = target
    lead_cc = country if country in AGENCY_OF else "US"
    partner_cc = "DE" if lead_cc != "DE" else "NL"
    lead, partner, users = _setup(ws, lead_cc, partner_cc)
    links = [("persona", persona), ("account", account)]
    common: dict[str, Any] = {"operation": DEMO_OPERATION, "country": lead_cc}
    case = records.add_record(
        ws, lead, Case(f"{DEMO_OPERATION}: {persona}",
                       f"Vendor persona {persona} ({account}); {substance or 'drugs'} listing"),
        members=[partner], provenance="demo: opened on the harm ranking of the assess stage",
        links=links, **common)
    cid = case.record_id
    # the parcel first: a buy names a parcel record its author may read
    parcel = records.add_record(
        ws, lead, Parcel("USPS", "9400 1000 0000 0000 0000 00", sender="J. Smith, 1 Main St",
                         return_address="PO Box 12", origin_postal="90001",
                         destination="undercover address", weight_g=28.0, postage="$4.35"),
        case_id=cid, occurred_on=date(2026, 3, 5), links=links,
        provenance="demo: parcel of the controlled buy, exhibit P-1", **common)
    buy = records.add_record(
        ws, lead, Buy(listing, account=account, price=float(price or 150.0), currency="USD",
                      txid="demo-txid-" + cid[-8:], parcel=parcel.record_id,
                      lab=LabResult("fentanyl", purity_pct=7.5, net_weight_g=1.1,
                                    pill_count=10, imprint="M 30")),
        case_id=cid, occurred_on=date(2026, 3, 2), links=links,
        provenance="demo: undercover buy, lab report DEMO-LAB-0001", **common)
    wallets = store.persona_addresses(ws.con, persona, 1)
    seizure = records.add_record(
        ws, lead, Seizure({"fentanyl": 640.0, "methamphetamine": 2500.0}, pills=1200,
                          firearms=2, cash={"USD": (48_000.0, None)},
                          crypto=(CryptoItem("BTC", 1.2, wallets[0] if wallets else "",
                                             78_000.0),),
                          place="stash house"),
        case_id=cid, occurred_on=date(2026, 4, 20), links=links,
        provenance="demo: search warrant return, inventory S-1", **common)
    arrest = records.add_record(
        ws, lead, Arrest(f"operator of persona {persona}", place="stash house",
                         charges=("21 U.S.C. 841 (distribution of fentanyl)",)),
        case_id=cid, occurred_on=date(2026, 4, 20), links=links,
        provenance="demo: arrest report A-1", **common)
    partner_comp = access.add_compartment(ws.con, partner, "agency", "own leads",
                                          compartment_id="demo-partner-leads")
    sent = deconflict.submit(ws, partner, partner_comp.compartment_id,
                             [("persona", persona), ("handle", account)]).notices
    # a second team of the lead agency works the same vendor without knowing of the case:
    # its compartment and the case's do not read each other, so both teams are told
    # whom to call (an overlap within one agency), nothing more
    lead_admin = f"{_agency(lead_cc)[0]}-admin"
    second = access.add_compartment(ws.con, lead_admin, "case", "second team",
                                    compartment_id="demo-second-team")
    sent += deconflict.submit(ws, lead_admin, second.compartment_id,
                              [("persona", persona)]).notices
    reported = {}
    if reported_csv is not None and reported_csv.is_file():
        reported = totals.import_reported(ws, lead, reported_csv)
    packages = {}
    for cc, user in ((lead_cc, lead), (partner_cc, partner)):
        packages[cc] = package.build_package(ws, user, cc, packages_dir / cc, ftm)
    recorded = totals.recorded_totals(ws, lead, DEMO_OPERATION)
    return DemoOperation(
        lead, partner, users, (lead_cc, partner_cc), persona,
        {"case": cid, "buy": buy.record_id, "parcel": parcel.record_id,
         "seizure": seizure.record_id, "arrest": arrest.record_id},
        sent, packages, reported, recorded)
