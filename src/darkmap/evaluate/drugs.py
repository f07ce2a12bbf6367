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
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NotRequired, TypedDict

from darkmap.assess.fx import load_fx
from darkmap.assess.lexicon import load_lexicon
from darkmap.assess.listing import Assessment, assess_listing
from darkmap.errors import BadInputError, NotFoundError
from darkmap.store.assessment import stored_assessments
from darkmap.store.evaluations import latest_listing_texts
from darkmap.store.workspace import Workspace

__all__ = ["Accuracy", "ClassScores", "DrugEvalReport", "ExactMatch", "FlagScores", "Mistake",
           "Predicted", "SourceListing", "SubstanceScores", "eval_drugs", "normal_kind",
           "read_labels", "read_listings"]

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

_LABEL_COLUMNS = ("drug_class", "substance", "counterfeit_pill", "fentanyl_risk", "units",
                  "unit_kind", "dose_mg")


class SourceListing(TypedDict):
    """A listing as the evaluation assesses it (``price``/``currency`` from a workspace)."""

    title: str | None
    description: str | None
    category_path: list[str]
    price_text: str | None
    observed_at: datetime | None
    price: NotRequired[float | None]
    currency: NotRequired[str | None]


class ClassScores(TypedDict):
    """Accuracy, macro-F1, the confusions (``gold->predicted``: count) of drug_class and
    each class's precision, recall and support."""

    accuracy: float | None
    macro_f1: float
    confusion: dict[str, int]
    per_class: dict[str, dict[str, float | int | None]]


class SubstanceScores(TypedDict):
    """Accuracy and macro-F1 of substance."""

    accuracy: float | None
    macro_f1: float


class Accuracy(TypedDict):
    """A share of labels predicted right (None without labels)."""

    accuracy: float | None


class FlagScores(TypedDict):
    """Precision and recall of a flag, with the counts behind them."""

    precision: float | None
    recall: float | None
    tp: int
    fp: int
    fn: int
    positives: int


class ExactMatch(TypedDict):
    """Share of exact matches (2% tolerance), overall and where the label has a value."""

    exact_match: float | None
    exact_match_where_labelled: float | None
    labelled: int


class Predicted(TypedDict):
    """What the assessment said about a listing."""

    drug_class: str
    substance: str
    counterfeit_pill: bool
    fentanyl_risk: bool
    units: float | None
    unit_kind: str
    dose_mg: float | None


class Mistake(TypedDict):
    """A labelled listing the assessment got (partly) wrong."""

    listing_id: str
    title: str | None
    wrong: list[str]
    gold: dict[str, str | None]
    predicted: Predicted
    evidence: str


class DrugEvalReport(TypedDict):
    """What ``darkmap eval drugs --json`` prints."""

    labels: str
    listings: str
    split: str
    n: int
    missing: list[str]
    drug_class: ClassScores
    drug_vs_non_drug: Accuracy
    substance: SubstanceScores
    counterfeit_pill: FlagScores
    fentanyl_risk: FlagScores
    units: ExactMatch
    unit_kind: Accuracy
    dose_mg: ExactMatch
    errors: list[Mistake]
    scored: NotRequired[str]


def _date(s: str | None) -> datetime | None:
    if not s:
        return None
    try:
        return datetime.fromisoformat(s.strip()[:10])
    except ValueError:
        return None


def _rows(path: Path) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            return list(csv.reader(fh, skipinitialspace=True))
    except (OSError, csv.Error) as exc:
        raise BadInputError(f"{path}: cannot read the listings: {exc}") from exc


def read_listings(path: Path) -> dict[str, SourceListing]:
    """Listings of a source file or folder keyed by listing id (first occurrence wins).

    A missing path or a folder without CSV files is a :class:`NotFoundError`, a file that
    cannot be read a :class:`BadInputError`.
    """
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"{path}: listings file not found")
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise NotFoundError(f"{path}: no CSV listings found")
    out: dict[str, SourceListing] = {}
    for f in files:
        rows = _rows(f)
        if not rows:
            continue
        head = [h.strip().casefold() for h in rows[0]]
        if "list" in head and "product" in head:
            _read_agora(rows, head, out)
        elif "listing_id" in head and "title" in head:
            _read_generic(rows, head, out)
        else:  # Hansa layout, no header
            _read_hansa(rows, out)
    return out


def _read_agora(rows: list[list[str]], head: list[str], out: dict[str, SourceListing]) -> None:
    """Agora CSV rows (header ``list, date, vendor, product, price, cat, ...``) into ``out``."""
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


def _read_generic(rows: list[list[str]], head: list[str],
                  out: dict[str, SourceListing]) -> None:
    """Rows of a CSV with ``listing_id`` and ``title`` columns into ``out``."""
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


def _read_hansa(rows: list[list[str]], out: dict[str, SourceListing]) -> None:
    """Hansa CSV rows (no header; id column 2, title 3, price 5, category 6) into ``out``."""
    for r in rows:
        if len(r) < 3:
            continue
        out.setdefault(r[1].strip(), {
            "title": r[2], "description": None,
            "category_path": [r[5]] if len(r) > 5 and r[5] else [],
            "price_text": r[4] if len(r) > 4 else None,
            "observed_at": _date(r[0])})


def _listings_from_workspace(ws: Workspace) -> dict[str, SourceListing]:
    """Latest observation of every listing, under its store id and its bare reference."""
    out: dict[str, SourceListing] = {}
    for r in latest_listing_texts(ws.con):
        rec: SourceListing = {
            "title": r.title, "description": r.description,
            "category_path": list(r.category_path or []), "price": r.price,
            "currency": r.currency, "price_text": r.price_text, "observed_at": r.observed_at}
        out[r.listing_id] = rec
        out.setdefault(r.listing_id.split(":", 1)[-1], rec)
    return out


def _bool(s: str | None) -> bool:
    return (s or "").strip().casefold() in ("1", "true", "yes", "y", "t")


def _float(s: str | None) -> float | None:
    try:
        v = float((s or "").strip())
    except ValueError:
        return None
    return v if v == v else None


def read_labels(path: Path, split: str | None = None,
                split_column: str = "split") -> list[dict[str, str]]:
    """Label rows (optionally only those whose ``split_column`` column equals ``split``).

    A missing file is a :class:`NotFoundError`; a file that cannot be read as UTF-8 CSV or
    lacks a needed column is a :class:`BadInputError`.
    """
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError as exc:
        raise NotFoundError(f"{path}: label file not found") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BadInputError(f"{path}: cannot read the label file: {exc}") from exc
    need = {"listing_id", "drug_class", "substance", "counterfeit_pill", "fentanyl_risk"}
    if rows and not need <= set(rows[0]):
        raise BadInputError(f"{path}: label file needs columns {sorted(need)}")
    if split:
        if rows and split_column not in rows[0]:
            raise BadInputError(f"{path}: no column '{split_column}' to select split "
                                f"'{split}' by (columns: {', '.join(rows[0])})")
        rows = [r for r in rows if (r.get(split_column) or "").strip() == split]
    return rows


# unit kinds as labellers write them -> the kinds of darkmap.assess.quantity.UNIT_KINDS
_KIND_SYNONYMS = {
    "pills": "pill", "tablet": "pill", "tablets": "pill", "tab": "pill", "tabs": "pill",
    "capsule": "pill", "capsules": "pill", "caps": "pill", "blister": "pill",
    "blotters": "blotter", "grams": "gram", "g": "gram", "gr": "gram", "seeds": "seed",
    "patches": "patch", "pieces": "piece", "pcs": "piece", "milliliter": "ml",
    "millilitre": "ml", "mls": "ml", "": "unknown", "none": "unknown", "?": "unknown"}


def normal_kind(kind: str | None) -> str:
    """A unit kind as :data:`darkmap.assess.quantity.UNIT_KINDS` names it ("Tablets" ->
    "pill", "grams" -> "gram"); an unknown word stays as it is, lower-cased."""
    k = (kind or "").strip().lower()
    return _KIND_SYNONYMS.get(k, k)


def _macro_f1(gold: list[str], pred: list[str]) -> float:
    labels = sorted(set(gold) | set(pred))
    f1s = []
    for lab in labels:
        tp = sum(g == lab and p == lab for g, p in zip(gold, pred, strict=True))
        fp = sum(g != lab and p == lab for g, p in zip(gold, pred, strict=True))
        fn = sum(g == lab and p != lab for g, p in zip(gold, pred, strict=True))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s) if f1s else 0.0


def _pr(gold: list[bool], pred: list[bool]) -> FlagScores:
    tp = sum(g and p for g, p in zip(gold, pred, strict=True))
    fp = sum((not g) and p for g, p in zip(gold, pred, strict=True))
    fn = sum(g and not p for g, p in zip(gold, pred, strict=True))
    prec = tp / (tp + fp) if tp + fp else None
    rec = tp / (tp + fn) if tp + fn else None
    return {"precision": prec, "recall": rec, "tp": tp, "fp": fp, "fn": fn,
            "positives": tp + fn}


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 0.02 * max(abs(a), abs(b), 1e-9)


@dataclass
class _Scores:
    """Gold and predicted values of every labelled listing found, and the match counts."""

    g_cls: list[str] = field(default_factory=list)
    p_cls: list[str] = field(default_factory=list)
    g_sub: list[str] = field(default_factory=list)
    p_sub: list[str] = field(default_factory=list)
    g_cf: list[bool] = field(default_factory=list)
    p_cf: list[bool] = field(default_factory=list)
    g_fr: list[bool] = field(default_factory=list)
    p_fr: list[bool] = field(default_factory=list)
    units_ok: int = 0
    kind_ok: int = 0
    dose_ok: int = 0
    units_lab: int = 0
    units_lab_ok: int = 0
    dose_lab: int = 0
    dose_lab_ok: int = 0

    def add(self, row: dict[str, str], a: Assessment) -> list[str]:
        """Score one label row against its assessment; the fields it got wrong."""
        self.g_cls.append(row["drug_class"].strip())
        self.p_cls.append(a.drug_class)
        self.g_sub.append(row["substance"].strip())
        self.p_sub.append(a.substance)
        self.g_cf.append(_bool(row["counterfeit_pill"]))
        self.p_cf.append(a.counterfeit_pill)
        self.g_fr.append(_bool(row["fentanyl_risk"]))
        self.p_fr.append(a.fentanyl_risk)
        gu, gd = _float(row.get("units")), _float(row.get("dose_mg"))
        gk = normal_kind(row.get("unit_kind"))
        u_ok, d_ok = _same(gu, a.units), _same(gd, a.dose_mg)
        self.units_ok += u_ok
        self.dose_ok += d_ok
        self.kind_ok += gk == normal_kind(a.unit_kind)
        if gu is not None:
            self.units_lab += 1
            self.units_lab_ok += u_ok
        if gd is not None:
            self.dose_lab += 1
            self.dose_lab_ok += d_ok
        return [k for k, ok in (("drug_class", self.g_cls[-1] == a.drug_class),
                                ("substance", self.g_sub[-1] == a.substance),
                                ("counterfeit_pill", self.g_cf[-1] == a.counterfeit_pill),
                                ("fentanyl_risk", self.g_fr[-1] == a.fentanyl_risk),
                                ("units", u_ok), ("dose_mg", d_ok)) if not ok]


def _mistake(lid: str, rec: SourceListing, row: dict[str, str], a: Assessment,
             wrong: list[str]) -> Mistake:
    """The record of a listing the assessment got wrong."""
    return {"listing_id": lid, "title": rec["title"], "wrong": wrong,
            "gold": {k: row.get(k) for k in _LABEL_COLUMNS},
            "predicted": {"drug_class": a.drug_class, "substance": a.substance,
                          "counterfeit_pill": a.counterfeit_pill,
                          "fentanyl_risk": a.fentanyl_risk, "units": a.units,
                          "unit_kind": a.unit_kind, "dose_mg": a.dose_mg},
            "evidence": a.flag_evidence}


def _stored(ws: Workspace) -> dict[str, Assessment]:
    """The assessments ``darkmap assess`` stored in ``ws``, under the store id and the
    bare listing reference (empty when the workspace was not assessed)."""
    out: dict[str, Assessment] = {}
    for lid, r in stored_assessments(ws.con).items():
        try:
            evidence = json.loads(r[5]) if r[5] else {}
        except ValueError:
            evidence = {}
        a = Assessment(r[0], r[1], r[2], bool(r[3]), bool(r[4]), evidence, r[6], r[7], r[8],
                       r[9], r[10], r[11], r[12], r[13] or "", r[14])
        out[lid] = a
        out.setdefault(lid.split(":", 1)[-1], a)
    return out


def eval_drugs(labels: Path, listings: Path | None = None, workspace: Workspace | None = None,
               split: str | None = None, errors: int = 25,
               split_column: str = "split") -> DrugEvalReport:
    """Score assessments against ``labels``; listings from ``listings`` or ``workspace``.

    Returns accuracy and macro-F1 for drug_class and substance, precision/recall for both
    flags, exact-match rates for units, unit_kind and dose (2% tolerance; both empty
    counts as a match), the label ids not found, and up to ``errors`` mistakes (rows
    are selected by ``split`` in the column ``split_column``; unit kinds are compared
    after :func:`normal_kind`). Neither ``listings`` nor ``workspace`` given is a
    :class:`BadInputError`. With a workspace that ``darkmap assess`` has assessed (and no
    ``listings``), what is stored is scored, not a fresh run of the assessor; the report
    says which under ``scored``.
    """
    if listings is not None:
        src = read_listings(Path(listings))
    elif workspace is not None:
        src = _listings_from_workspace(workspace)
    else:
        raise BadInputError("give the source listings (--listings FILE) or a workspace")
    stored = _stored(workspace) if listings is None and workspace is not None else {}
    lex, fx = load_lexicon(), load_fx()
    gold_rows = read_labels(Path(labels), split, split_column)
    sc = _Scores()
    missing: list[str] = []
    mistakes: list[Mistake] = []
    for row in gold_rows:
        lid = row["listing_id"].strip()
        rec = src.get(lid)
        if rec is None:
            missing.append(lid)
            continue
        a = stored.get(lid) if stored else None
        if a is None:
            a = assess_listing(rec["title"], rec.get("description"), rec.get("category_path"),
                               rec.get("price"), rec.get("currency"), rec.get("price_text"),
                               rec.get("observed_at"), lexicon=lex, fx=fx)
        wrong = sc.add(row, a)
        if wrong and len(mistakes) < errors:
            mistakes.append(_mistake(lid, rec, row, a, wrong))
    report = _report(sc, labels, listings, split, missing, mistakes)
    report["scored"] = "stored assessments" if stored else "assessor run now"
    return report


def _share(k: int, n: int) -> float | None:
    return k / n if n else None


def _accuracy(gold: list[str] | list[bool], pred: list[str] | list[bool]) -> float | None:
    n = len(gold)
    return sum(x == y for x, y in zip(gold, pred, strict=True)) / n if n else None


def _per_class(gold: list[str], pred: list[str]) -> dict[str, dict[str, float | int | None]]:
    """Precision, recall and support of every class in ``gold`` or ``pred``."""
    out: dict[str, dict[str, float | int | None]] = {}
    for c in sorted(set(gold) | set(pred)):
        tp = sum(g == c and p == c for g, p in zip(gold, pred, strict=True))
        n_pred, n_gold = pred.count(c), gold.count(c)
        out[c] = {"precision": _share(tp, n_pred), "recall": _share(tp, n_gold),
                  "support": n_gold}
    return out


def _report(sc: _Scores, labels: Path, listings: Path | None, split: str | None,
            missing: list[str], mistakes: list[Mistake]) -> DrugEvalReport:
    """The report of :func:`eval_drugs`, keys in the order the CLI prints them."""
    n = len(sc.g_cls)
    gold_drug = [c != "non_drug" for c in sc.g_cls]
    pred_drug = [c != "non_drug" for c in sc.p_cls]
    return {
        "labels": str(labels), "listings": str(listings) if listings else "workspace",
        "split": split or "all", "n": n, "missing": missing,
        "drug_class": {"accuracy": _accuracy(sc.g_cls, sc.p_cls),
                       "macro_f1": _macro_f1(sc.g_cls, sc.p_cls),
                       "confusion": dict(Counter(
                           f"{g}->{p}" for g, p in zip(sc.g_cls, sc.p_cls, strict=True)
                           if g != p)),
                       "per_class": _per_class(sc.g_cls, sc.p_cls)},
        "drug_vs_non_drug": {"accuracy": _accuracy(gold_drug, pred_drug)},
        "substance": {"accuracy": _accuracy(sc.g_sub, sc.p_sub),
                      "macro_f1": _macro_f1(sc.g_sub, sc.p_sub)},
        "counterfeit_pill": _pr(sc.g_cf, sc.p_cf),
        "fentanyl_risk": _pr(sc.g_fr, sc.p_fr),
        "units": {"exact_match": _share(sc.units_ok, n),
                  "exact_match_where_labelled": _share(sc.units_lab_ok, sc.units_lab),
                  "labelled": sc.units_lab},
        "unit_kind": {"accuracy": _share(sc.kind_ok, n)},
        "dose_mg": {"exact_match": _share(sc.dose_ok, n),
                    "exact_match_where_labelled": _share(sc.dose_lab_ok, sc.dose_lab),
                    "labelled": sc.dose_lab},
        "errors": mistakes,
    }
