"""Score the current linker, with default settings, on worlds of all three generators.

Prints JSON: per world, pairwise precision / recall / F1 and B-cubed F1 of
``darkmap.resolve.link.link`` (scored by ``darkmap.evaluate.linking.eval_linking``) and of
the *same-handle baseline* (accounts whose case-folded handles are equal form one persona,
scored by ``score_clusters``), with the seconds to generate and to link.

Generators:

* ``scene``: ``darkmap.training.sceneworld`` (records through the store writer). Seeds
  900-949 may be used for fitting and tuning; **950-999 are held out**: report on them.
* ``synthworld``: ``darkmap.training.synthworld`` (the linker's own generator; trained on
  seeds 101-106).
* ``simulate``: ``darkmap simulate`` pages, listings and seized dump, ingested through the
  real importers (training range 200-299: use other seeds).

Every world is built and linked in a fresh child process (peak RSS is that run's own)::

    nice -n 5 python bench/link_generators.py --actors 2000 \\
        --seeds scene=950,951 --seeds simulate=131 --seeds synthworld=777

``--scene-knob NAME=VALUE`` (repeatable) changes a knob of the scene worlds, e.g.
``--scene-knob lookalike_rate=0.2``. ``--keep DIR`` keeps each world as
``DIR/<generator>-<seed>-<actors>/ws`` with its ``truth.json`` beside it, so that
``darkmap link -w .../ws`` and ``darkmap eval linking -w .../ws --truth .../truth.json``
can be run on it afterwards.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GENERATORS = ("scene", "synthworld", "simulate")
DEFAULT_SEEDS = {"scene": "950,951", "synthworld": "777", "simulate": "131"}


def build(generator: str, seed: int, actors: int, base: Path,
          knobs: dict[str, float] | None = None) -> tuple[Any, dict[str, Any]]:
    """Build one world into ``base / "ws"``; return the workspace and its truth.
    ``knobs`` override :class:`SceneParams` fields (scene worlds only)."""
    from darkmap.store.workspace import Workspace

    if generator == "scene":
        from darkmap.training.sceneworld import SceneParams, make_scene_world

        ws = Workspace.init(base / "ws")
        defaults = SceneParams()
        typed = {k: type(getattr(defaults, k))(v) for k, v in (knobs or {}).items()}
        return ws, make_scene_world(ws, SceneParams(actors=actors, seed=seed, **typed))
    if generator == "synthworld":
        from darkmap.training.synthworld import WorldParams, make_world

        ws = Workspace.init(base / "ws")
        return ws, make_world(ws, WorldParams(actors=actors, seed=seed))
    if generator == "simulate":
        from darkmap.collect.ingest import ingest
        from darkmap.simulate import SimParams, simulate

        out = base / "world"
        simulate(out, seed, SimParams(vendors=actors, chain=False))
        ws = Workspace.init(base / "ws")
        ingest(ws, [out / "pages", out / "listings", out / "seized"])
        truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
        shutil.rmtree(out)
        return ws, truth
    raise SystemExit(f"unknown generator {generator!r} (one of {', '.join(GENERATORS)})")


def same_handle_baseline(ws: Any, truth: dict[str, Any]) -> dict[str, Any]:
    """Scores of 'one persona per case-folded handle' against the truth."""
    from darkmap.evaluate.linking import score_clusters

    true = {a: str(v["actor"]) for a, v in truth["accounts"].items()
            if isinstance(v, dict) and v.get("role", "vendor") == "vendor" and v.get("actor")}
    pred = {a: h.strip().casefold() for a, h in
            ws.con.execute("SELECT account_id, handle FROM accounts").fetchall()}
    s = score_clusters(pred, true)
    return {k: s[k] for k in ("pairwise_precision", "pairwise_recall", "pairwise_f1",
                              "bcubed_f1")}


def false_pair_causes(ws: Any, truth: dict[str, Any]) -> dict[str, int]:
    """Falsely merged account pairs of a scene world by what their two actors have in
    common (first that applies): look-alike handle, impersonation, a shared writer, the
    same country (scene boilerplate), nothing of these."""
    from collections import Counter

    from darkmap.store.evaluations import persona_assignment

    actors = truth["actors"]
    look = {frozenset(p) for p in truth.get("lookalikes", [])}
    imp = {frozenset((a, b)) for a, b in truth.get("impersonators", {}).items()}
    members: dict[str, Counter[str]] = {}
    for aid, persona in persona_assignment(ws.con).items():
        acc = truth["accounts"].get(aid)
        if acc:
            members.setdefault(persona, Counter())[acc["actor"]] += 1
    out: Counter[str] = Counter()
    for c in members.values():
        names = sorted(c)
        for i, x in enumerate(names):
            for y in names[i + 1:]:
                pair = frozenset((x, y))
                if pair in look:
                    cause = "lookalike"
                elif pair in imp:
                    cause = "impersonation"
                elif set(actors[x].get("voices", [])) & set(actors[y].get("voices", [])):
                    cause = "shared_writer"
                elif actors[x].get("country") == actors[y].get("country"):
                    cause = "same_country"
                else:
                    cause = "other"
                out[cause] += c[x] * c[y]
    return dict(sorted(out.items()))


def missed_pair_causes(ws: Any, truth: dict[str, Any]) -> dict[str, int]:
    """True pairs of a scene world left in two personas, by the first that applies: one
    account is bare (``terse``), the actor is a team, the later account's writing drifted
    by 4 habits or more, the handle changed and no key is shared, nothing of these."""
    from collections import Counter

    from darkmap.store.evaluations import persona_assignment

    pred = persona_assignment(ws.con)
    teams = truth.get("teams", {})
    out: Counter[str] = Counter()
    for name, actor in truth["actors"].items():
        accs = [a for a in actor["accounts"] if a in truth["accounts"]]
        for i, a in enumerate(accs):
            for b in accs[i + 1:]:
                if pred.get(a, a) == pred.get(b, b):
                    continue
                x, y = truth["accounts"][a], truth["accounts"][b]
                if x.get("terse") or y.get("terse"):
                    cause = "terse"
                elif name in teams:
                    cause = "team"
                elif abs(x.get("drifted_traits", 0) - y.get("drifted_traits", 0)) >= 4:
                    cause = "drift"
                elif (x["handle"].casefold() != y["handle"].casefold()
                      and not set(x["pgp_fingerprints"]) & set(y["pgp_fingerprints"])):
                    cause = "new_handle_no_shared_key"
                else:
                    cause = "other"
                out[cause] += 1
    return dict(sorted(out.items()))


def run_one(generator: str, seed: int, actors: int, keep: str,
            knobs: dict[str, float] | None = None) -> dict[str, Any]:
    """Build, link with default settings and score one world."""
    from darkmap.evaluate.linking import eval_linking
    from darkmap.resolve.link import link

    tmp = tempfile.mkdtemp(prefix=f"lg-{generator}-")
    base = Path(keep) / f"{generator}-{seed}-{actors}" if keep else Path(tmp)
    base.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        ws, truth = build(generator, seed, actors, base, knobs)
        gen_s = time.perf_counter() - t
        if keep:
            (base / "truth.json").write_text(json.dumps(truth, default=str), encoding="utf-8")
        t = time.perf_counter()
        res = link(ws)
        link_s = time.perf_counter() - t
        ev = eval_linking(ws, truth)
        out = {"generator": generator, "seed": seed, "actors": actors,
               **({"knobs": knobs} if knobs and generator == "scene" else {}),
               "accounts": ev["accounts"], "true_pairs": ev["true_pairs"],
               "generate_s": round(gen_s, 1), "link_s": round(link_s, 1),
               "personas": res.summary["personas"],
               **{k: ev[k] for k in ("pairwise_precision", "pairwise_recall", "pairwise_f1",
                                     "bcubed_precision", "bcubed_recall", "bcubed_f1")},
               "same_handle_baseline": same_handle_baseline(ws, truth),
               **({"false_pairs_by_cause": false_pair_causes(ws, truth),
                   "missed_pairs_by_cause": missed_pair_causes(ws, truth)}
                  if generator == "scene" else {}),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
        ws.close()
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    """Run every (generator, seed) in a child process and print the figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--actors", default="2000", help="sizes, comma-separated")
    ap.add_argument("--seeds", action="append", default=[],
                    help="GENERATOR=SEED[,SEED...]; repeat per generator (default: "
                         + " ".join(f"{g}={s}" for g, s in DEFAULT_SEEDS.items()) + ")")
    ap.add_argument("--keep", default="", help="keep each workspace and truth.json here")
    ap.add_argument("--scene-knob", action="append", default=[], metavar="NAME=VALUE",
                    help="override a SceneParams knob of the scene worlds (repeatable)")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    knobs = {k: float(v) for k, _, v in (x.partition("=") for x in a.scene_knob)}
    if a.child:
        gen, seed, actors = a.child.split(":")
        print(json.dumps(run_one(gen, int(seed), int(actors), a.keep, knobs)))
        return
    plan: dict[str, list[int]] = {}
    for spec in a.seeds or [f"{g}={s}" for g, s in DEFAULT_SEEDS.items()]:
        gen, _, seeds = spec.partition("=")
        if gen not in GENERATORS:
            raise SystemExit(f"unknown generator {gen!r} (one of {', '.join(GENERATORS)})")
        plan.setdefault(gen, []).extend(int(s) for s in seeds.split(",") if s)
    runs = []
    for size in (int(x) for x in a.actors.split(",") if x):
        for gen, seeds in plan.items():
            for seed in seeds:
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", f"{gen}:{seed}:{size}",
                     "--keep", a.keep, *(f"--scene-knob={x}" for x in a.scene_knob)],
                    capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    runs.append({"generator": gen, "seed": seed, "actors": size,
                                 "error": proc.stderr[-2000:]})
                    continue
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(json.dumps({"linker": "darkmap.resolve.link.link, default options",
                      "held_out_scene_seeds": "950-999", "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
