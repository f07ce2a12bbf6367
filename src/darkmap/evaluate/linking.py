"""Evaluate personas against a simulator's truth: pairwise and B-cubed scores.

Only vendor accounts named in the truth count. A truth account the workspace never saw
is scored as a singleton persona (it costs recall, as it should); accounts the truth
does not know are ignored.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, TypedDict

from darkmap.errors import BadInputError, NotFoundError
from darkmap.store.evaluations import persona_assignment
from darkmap.store.workspace import Workspace

__all__ = ["LinkingReport", "PersonaScores", "eval_linking", "load_truth", "score_clusters"]


class PersonaScores(TypedDict):
    """Pairwise and B-cubed scores of a clustering against true labels."""

    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    accounts: int
    true_pairs: int
    predicted_pairs: int
    true_positive_pairs: int


class LinkingReport(PersonaScores):
    """What ``darkmap eval linking --json`` prints."""

    accounts_in_workspace: int
    cross_market_true_pairs: int


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score_clusters(pred: dict[str, str], true: dict[str, str]) -> PersonaScores:
    """Pairwise and B-cubed precision/recall/F1 of ``pred`` against ``true`` labels."""
    items = list(true)
    cells = Counter((pred.get(a, "single:" + a), true[a]) for a in items)
    psize: Counter[str] = Counter()
    tsize: Counter[str] = Counter()
    for (pc, tc), c in cells.items():
        psize[pc] += c
        tsize[tc] += c

    def pairs(c: int) -> int:
        return c * (c - 1) // 2

    tp = sum(pairs(c) for c in cells.values())
    pp = sum(pairs(c) for c in psize.values())
    tt = sum(pairs(c) for c in tsize.values())
    prec = tp / pp if pp else 1.0
    rec = tp / tt if tt else 1.0
    n = len(items) or 1
    bp = sum(c * c / psize[pc] for (pc, _), c in cells.items()) / n
    br = sum(c * c / tsize[tc] for (_, tc), c in cells.items()) / n
    return {"pairwise_precision": round(prec, 4), "pairwise_recall": round(rec, 4),
            "pairwise_f1": round(_f1(prec, rec), 4), "bcubed_precision": round(bp, 4),
            "bcubed_recall": round(br, 4), "bcubed_f1": round(_f1(bp, br), 4),
            "accounts": len(items), "true_pairs": tt, "predicted_pairs": pp,
            "true_positive_pairs": tp}


def load_truth(path: str | Path) -> dict[str, Any]:
    """A simulated world's truth.json: :class:`NotFoundError` when missing,
    :class:`BadInputError` when it cannot be read as a JSON object."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NotFoundError(f"{path}: truth file not found") from exc
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}: cannot read truth file: not JSON (line {exc.lineno}, "
                            f"column {exc.colno}: {exc.msg}); give the truth.json written "
                            "by `darkmap simulate`") from exc
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path}: cannot read truth file: not UTF-8 text (byte "
                            f"{exc.start}); give the truth.json written by `darkmap "
                            "simulate`") from exc
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read truth file: {exc.strerror or exc}") from exc
    if not isinstance(data, dict):
        raise BadInputError(f"{path}: truth file is not a JSON object")
    return data


def eval_linking(ws: Workspace, truth: dict[str, Any] | str | Path) -> LinkingReport:
    """Score the workspace's personas against ``truth`` (a dict or a truth.json path)."""
    if not isinstance(truth, dict):
        truth = load_truth(truth)
    accounts = truth.get("accounts", {})
    if not isinstance(accounts, dict):
        raise BadInputError(
            f'the truth\'s "accounts" is a JSON {type(accounts).__name__}, not an object '
            'mapping account ids to {"actor": ...} (see `darkmap eval linking --help`)')
    true = {a: str(v.get("actor")) for a, v in accounts.items()
            if isinstance(v, dict) and v.get("role", "vendor") == "vendor" and v.get("actor")}
    pred = persona_assignment(ws.con)
    present = sum(1 for a in true if a in pred)
    if not present:
        raise BadInputError(
            f"the truth names {len(true):,} vendor accounts and none of them is in a persona "
            "of this workspace (wrong truth file or workspace, or `darkmap link` not run): "
            "a score over no accounts would be meaningless")
    scores = score_clusters(pred, true)
    return LinkingReport(**scores,
                         accounts_in_workspace=present,
                         cross_market_true_pairs=_cross_market_pairs(accounts, true))


def _cross_market_pairs(accounts: dict[str, Any], true: dict[str, str]) -> int:
    by_actor: dict[str, list[str]] = {}
    for a, actor in true.items():
        by_actor.setdefault(actor, []).append(str(accounts[a].get("market")))
    total = 0
    for markets in by_actor.values():
        c = Counter(markets)
        k = len(markets)
        total += k * (k - 1) // 2 - sum(v * (v - 1) // 2 for v in c.values())
    return total
