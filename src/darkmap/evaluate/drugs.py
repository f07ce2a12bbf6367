"""Score the drug assessment against a hand-labelled CSV.

Label file columns: ``listing_id, drug_class, substance, counterfeit_pill, fentanyl_risk,
units, unit_kind, dose_mg`` (others, e.g. ``split`` or ``title``, are ignored unless asked
for). Listings come straight from their source file, so labels made by anyone on real
data can be scored without a workspace:

* the Hansa CSV (no header; listing id is column 2, title 3, price 5, category 6),
* Agora CSVs (header ``list, date, vendor, product, price, cat, subcat, subsubcat, ...``;
  a folder of them is read whole),
* any CSV with a header holding ``listing_id`` and ``title`` (optional ``description``,
  ``category``, ``price_text``, ``observed_at``),

or from a workspace (latest observation per listing; a label id matches the store id
``market:ref`` or just ``ref``).
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from darkmap.assess.listing import assess_listing
from darkmap.assess.lexicon import load_lexicon
from darkmap.assess.fx import load_fx

__all__ = ["eval_drugs", "read_labels", "read_listings"]

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _date(s: str | None) -> datetime | None:
    if not s:
        return None
    try:
        return datetime.fromisoformat(s.strip()[:10])
    except ValueError:
        return None


def _rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        return list(csv.reader(fh, skipinitialspace=True))


def read_listings(path: Path) -> dict[str, dict[str, Any]]:
    """Listings of a source file or folder keyed by listing id (first occurrence wins)."""
    path = Path(path)
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"{path}: no CSV listings found")
    out: dict[str, dict[str, Any]] = {}
    for f in files:
        rows = _rows(f)
        if not rows:
            continue
        head = [h.strip().casefold() for h in rows[0]]
        if "list" in head and "product" in head:
            ix = {h: i for i, h in enumerate(head)}
            for r in rows[1:]:
                if len(r) <= ix["product"]:
                    continue
                cats = [r[ix[c]] for c in ("cat", "subcat", "subsubcat")
                        if c in ix and len(r) > ix[c] and r[ix[c]]]
                out.setdefault(r[ix["list"]].strip(), {
                    "title": r[ix["product"]], "description": None, "category_path": cats,
                    "price_text": None,
                    "observed_at": _date(r[ix["date"]]) if "date" in ix else None})
        elif "listing_id" in head and "title" in head:
            ix = {h: i for i, h in enumerate(head)}

            def get(r: list[str], k: str) -> str | None:
                return r[ix[k]] if k in ix and len(r) > ix[k] else None
            for r in rows[1:]:
                lid = (get(r, "listing_id") or "").strip()
                if lid:
                    cat = get(r, "category") or ""
                    out.setdefault(lid, {
                        "title": get(r, "title") or "", "description": get(r, "description"),
                        "category_path": [c.strip() for c in cat.split("/") if c.strip()],
                        "price_text": get(r, "price_text") or get(r, "price"),
                        "observed_at": _date(get(r, "observed_at"))})
        else:  # Hansa layout, no header
            for r in rows:
                if len(r) < 3:
                    continue
                out.setdefault(r[1].strip(), {
                    "title": r[2], "description": None,
                    "category_path": [r[5]] if len(r) > 5 and r[5] else [],
                    "price_text": r[4] if len(r) > 4 else None,
                    "observed_at": _date(r[0])})
    return out


def _listings_from_workspace(ws: Any) -> dict[str, dict[str, Any]]:
    rows = ws.con.execute("""
        SELECT listing_id, title, description, category_path, price, currency, price_text,
               observed_at
        FROM listing_observations
        QUALIFY row_number() OVER (PARTITION BY listing_id ORDER BY observed_at DESC NULLS LAST,
                                   obs_id) = 1""").fetchall()
    out: dict[str, dict[str, Any]] = {}
    for lid, title, desc, cats, price, cur, ptext, obs in rows:
        rec = {"title": title, "description": desc, "category_path": list(cats or []),
               "price": price, "currency": cur, "price_text": ptext, "observed_at": obs}
        out[lid] = rec
        out.setdefault(lid.split(":", 1)[-1], rec)
    return out


def _bool(s: str | None) -> bool:
    return (s or "").strip().casefold() in ("1", "true", "yes", "y", "t")


def _float(s: str | None) -> float | None:
    try:
        v = float((s or "").strip())
    except ValueError:
        return None
    return v if v == v else None


def read_labels(path: Path, split: str | None = None) -> list[dict[str, Any]]:
    """Label rows (optionally only those whose ``split`` column equals ``split``)."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    need = {"listing_id", "drug_class", "substance", "counterfeit_pill", "fentanyl_risk"}
    if rows and not need <= set(rows[0]):
        raise ValueError(f"{path}: label file needs columns {sorted(need)}")
    if split:
        rows = [r for r in rows if (r.get("split") or "") == split]
    return rows


def _macro_f1(gold: list[str], pred: list[str]) -> float:
    labels = sorted(set(gold) | set(pred))
    f1s = []
    for lab in labels:
        tp = sum(g == lab and p == lab for g, p in zip(gold, pred))
        fp = sum(g != lab and p == lab for g, p in zip(gold, pred))
        fn = sum(g == lab and p != lab for g, p in zip(gold, pred))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s) if f1s else 0.0


def _pr(gold: list[bool], pred: list[bool]) -> dict[str, Any]:
    tp = sum(g and p for g, p in zip(gold, pred))
    fp = sum((not g) and p for g, p in zip(gold, pred))
    fn = sum(g and not p for g, p in zip(gold, pred))
    prec = tp / (tp + fp) if tp + fp else None
    rec = tp / (tp + fn) if tp + fn else None
    return {"precision": prec, "recall": rec, "tp": tp, "fp": fp, "fn": fn,
            "positives": tp + fn}


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 0.02 * max(abs(a), abs(b), 1e-9)


def eval_drugs(labels: Path, listings: Path | None = None, workspace: Any = None,
               split: str | None = None, errors: int = 25) -> dict[str, Any]:
    """Score assessments against ``labels``; listings from ``listings`` or ``workspace``.

    Returns accuracy and macro-F1 for drug_class and substance, precision/recall for both
    flags, exact-match rates for units, unit_kind and dose (2% tolerance; both empty
    counts as a match), the label ids not found, and up to ``errors`` mistakes.
    """
    if listings is None and workspace is None:
        raise ValueError("give the source listings (--listings FILE) or a workspace")
    src = read_listings(Path(listings)) if listings is not None else \
        _listings_from_workspace(workspace)
    lex, fx = load_lexicon(), load_fx()
    gold_rows = read_labels(Path(labels), split)
    g_cls, p_cls, g_sub, p_sub = [], [], [], []
    g_cf, p_cf, g_fr, p_fr = [], [], [], []
    units_ok = kind_ok = dose_ok = 0
    units_lab = units_lab_ok = dose_lab = dose_lab_ok = 0
    missing, mistakes = [], []
    for row in gold_rows:
        lid = row["listing_id"].strip()
        rec = src.get(lid)
        if rec is None:
            missing.append(lid)
            continue
        a = assess_listing(rec["title"], rec.get("description"), rec.get("category_path"),
                           rec.get("price"), rec.get("currency"), rec.get("price_text"),
                           rec.get("observed_at"), lexicon=lex, fx=fx)
        g_cls.append(row["drug_class"].strip())
        p_cls.append(a.drug_class)
        g_sub.append(row["substance"].strip())
        p_sub.append(a.substance)
        g_cf.append(_bool(row["counterfeit_pill"]))
        p_cf.append(a.counterfeit_pill)
        g_fr.append(_bool(row["fentanyl_risk"]))
        p_fr.append(a.fentanyl_risk)
        gu, gd = _float(row.get("units")), _float(row.get("dose_mg"))
        gk = (row.get("unit_kind") or "").strip() or "unknown"
        u_ok, d_ok = _same(gu, a.units), _same(gd, a.dose_mg)
        units_ok += u_ok
        dose_ok += d_ok
        kind_ok += gk == a.unit_kind
        if gu is not None:
            units_lab += 1
            units_lab_ok += u_ok
        if gd is not None:
            dose_lab += 1
            dose_lab_ok += d_ok
        wrong = [k for k, ok in (("drug_class", g_cls[-1] == a.drug_class),
                                 ("substance", g_sub[-1] == a.substance),
                                 ("counterfeit_pill", g_cf[-1] == a.counterfeit_pill),
                                 ("fentanyl_risk", g_fr[-1] == a.fentanyl_risk),
                                 ("units", u_ok), ("dose_mg", d_ok)) if not ok]
        if wrong and len(mistakes) < errors:
            mistakes.append({"listing_id": lid, "title": rec["title"], "wrong": wrong,
                             "gold": {k: row.get(k) for k in ("drug_class", "substance",
                                      "counterfeit_pill", "fentanyl_risk", "units",
                                      "unit_kind", "dose_mg")},
                             "predicted": {"drug_class": a.drug_class,
                                           "substance": a.substance,
                                           "counterfeit_pill": a.counterfeit_pill,
                                           "fentanyl_risk": a.fentanyl_risk,
                                           "units": a.units, "unit_kind": a.unit_kind,
                                           "dose_mg": a.dose_mg},
                             "evidence": a.flag_evidence})
    n = len(g_cls)
    acc = (lambda g, p: sum(x == y for x, y in zip(g, p)) / n if n else None)
    gold_drug = [c != "non_drug" for c in g_cls]
    pred_drug = [c != "non_drug" for c in p_cls]
    return {
        "labels": str(labels), "listings": str(listings) if listings else "workspace",
        "split": split or "all", "n": n, "missing": missing,
        "drug_class": {"accuracy": acc(g_cls, p_cls), "macro_f1": _macro_f1(g_cls, p_cls),
                       "confusion": dict(Counter(f"{g}->{p}" for g, p in zip(g_cls, p_cls)
                                                 if g != p))},
        "drug_vs_non_drug": {"accuracy": acc(gold_drug, pred_drug)},
        "substance": {"accuracy": acc(g_sub, p_sub), "macro_f1": _macro_f1(g_sub, p_sub)},
        "counterfeit_pill": _pr(g_cf, p_cf),
        "fentanyl_risk": _pr(g_fr, p_fr),
        "units": {"exact_match": units_ok / n if n else None,
                  "exact_match_where_labelled": units_lab_ok / units_lab if units_lab else None,
                  "labelled": units_lab},
        "unit_kind": {"accuracy": kind_ok / n if n else None},
        "dose_mg": {"exact_match": dose_ok / n if n else None,
                    "exact_match_where_labelled": dose_lab_ok / dose_lab if dose_lab else None,
                    "labelled": dose_lab},
        "errors": mistakes,
    }
