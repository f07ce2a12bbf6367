"""Link the real accounts in ../shared/data and test the linker against PGP evidence.

Prints JSON:
* ``personas``: the cross-market (and multi-account) personas found with all evidence,
  each with its accounts and the strongest signals of its links;
* ``pgp_holdout``: account pairs that publish the same PGP key are the only real
  ground truth here. Keys are hidden (``--without pgp``, then ``--without identifiers``)
  and we report how many of those pairs the remaining signals still put in one persona,
  and the score the model gives each pair.

    .venv/bin/python bench/link_real.py [--workspace /tmp/real-ws]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from darkmap.collect.ingest import ingest
from darkmap.resolve.features import compare
from darkmap.resolve.link import LinkOptions, _model_for, link, resolve_signals
from darkmap.resolve.lookup import show_persona
from darkmap.resolve.profiles import load_profiles
from darkmap.store.workspace import Workspace

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _pgp_pairs(ws: Workspace) -> list[tuple[str, str, str]]:
    rows = ws.con.execute("""
        SELECT value, list(DISTINCT account_id ORDER BY account_id) FROM identifiers
        WHERE kind = 'pgp_fingerprint' AND account_id IS NOT NULL
        GROUP BY value HAVING count(DISTINCT account_id) > 1 ORDER BY value""").fetchall()
    out = []
    for fp, accts in rows:
        for k, a in enumerate(accts):
            for b in accts[k + 1:]:
                out.append((a, b, fp))
    return sorted(out)  # the same order in every run


def _holdout(ws: Workspace, pairs: list[tuple[str, str, str]],
             without: tuple[str, ...]) -> dict[str, Any]:
    res = link(ws, LinkOptions(without=without))
    persona = dict(ws.con.execute("SELECT account_id, persona_id FROM persona_members"
                                  ).fetchall())
    prof = load_profiles(ws.con)
    use = resolve_signals(None, without)
    idx = [(prof.index[a], prof.index[b]) for a, b, _ in pairs
           if a in prof.index and b in prof.index]
    i = np.array([x for x, _ in idx], dtype=np.int64)
    j = np.array([y for _, y in idx], dtype=np.int64)
    f = compare(prof, i, j, use)
    model = _model_for("logistic", use, f, prof)
    p = model.probability(f)
    contrib = model.contributions(f)
    detail = []
    for k, (a, b, fp) in enumerate(pairs):
        top = sorted(((s, round(float(c[k]), 2)) for s, c in contrib.items() if c[k]),
                     key=lambda x: -abs(x[1]))[:4]
        detail.append({"a": a, "b": b, "key": fp[-16:], "score": round(float(p[k]), 3),
                       "same_persona": persona.get(a) == persona.get(b),
                       "cross_market": a.split(":")[0] != b.split(":")[0],
                       "top_signals": top})
    linked = sum(d["same_persona"] for d in detail)
    return {"without": list(without), "pairs": len(detail), "linked": linked,
            "recall": round(linked / len(detail), 3) if detail else None,
            "median_score": round(float(np.median(p)), 3) if len(p) else None,
            "scores_at_least_0_5": int((p >= 0.5).sum()),
            "link_seconds": res.summary["seconds"], "personas": res.summary["personas"],
            "multi_account_personas": res.summary["multi_account_personas"],
            "pairs_detail": detail}


def main() -> None:
    """Ingest (once), link, and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workspace", type=Path, default=None)
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    tmp = None
    if a.workspace is None:
        tmp = tempfile.TemporaryDirectory()
        a.workspace = Path(tmp.name) / "ws"
    ws = Workspace.init(a.workspace)
    t = time.perf_counter()
    ingest(ws, [DATA / "pages", DATA / "listings", DATA / "seized"])
    ingest_s = time.perf_counter() - t
    accounts = dict(ws.con.execute("SELECT market_id, count(*) FROM accounts GROUP BY 1"
                                   ).fetchall())
    full = link(ws, LinkOptions())
    rows = ws.con.execute("""SELECT persona_id FROM personas WHERE n_markets > 1
                             ORDER BY cohesion DESC NULLS LAST, n_accounts DESC""").fetchall()
    personas = []
    for (pid,) in rows[: a.top]:
        d = show_persona(ws, pid)
        personas.append({
            "persona_id": pid, "label": d["label"], "cohesion": d["cohesion"],
            "accounts": [x["account_id"] for x in d["accounts"]],
            "shared_identifiers": [f"{i['kind']}:{i['value'][-16:]}" for i in d["identifiers"]
                                   if len(i["accounts"]) > 1],
            "links": [{"a": lk["a"], "b": lk["b"], "score": lk["score"],
                       "why": [(s["signal"], s["contribution"], s["level"])
                               for s in lk["signals"][:4]]} for lk in d["links"][:3]],
        })
    pairs = _pgp_pairs(ws)
    out = {
        "ingest_s": round(ingest_s, 1), "accounts_by_market": accounts,
        "link_all_evidence": {k: full.summary[k] for k in
                              ("accounts", "personas", "multi_account_personas",
                               "cross_market_personas", "seconds")},
        "cross_market_personas_total": len(rows),
        "cross_market_personas": personas,
        "pgp_shared_pairs": len(pairs),
        "pgp_holdout": [_holdout(ws, pairs, ("pgp",)),
                        _holdout(ws, pairs, ("identifiers",))],
    }
    ws.close()
    print(json.dumps(out, indent=1, default=str))
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
