"""What a link run changed since the previous one: personas split, merged, accounts moved,
and which judgements took effect (``darkmap link`` prints it, ``link_runs.summary`` and
``persona_changes`` keep it, ``darkmap persona show`` says it for one persona).

Personas are compared **by membership**, not by id. A persona's id is derived from its
smallest member account id (``"p-" + row_id("persona", min(accounts))[:12]``): it stays
the same while that account stays in it, so a persona that loses its smallest account in
a split, or gains a smaller one in a merge or from new evidence, gets another id although
most of it is the same group. So the accounts of both runs are paired up: for every
account present in both, (persona before, persona after). The connected groups of those
pairs are the changes:

* one persona before, several after: a **split**;
* several before, one after: a **merge**;
* several on both sides: a **move** (accounts moved between personas);
* one on each side, with accounts new to the workspace: **grew** (its id may change).

Every change lists its *moves*: the accounts that went from each persona before to each
persona after (``before`` is None for accounts the previous run did not have).

Pure Python (no numpy): the link run calls it with the two memberships.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TypedDict

__all__ = ["KINDS", "JudgementEffect", "Move", "PersonaChange", "PersonaSize", "RunChanges",
           "compare_runs", "first_run"]

KINDS = ("split", "merge", "move", "grew")


class PersonaSize(TypedDict):
    """A persona on one side of a change: its id and how many accounts it holds there."""

    persona_id: str
    accounts: int


class Move(TypedDict):
    """Accounts that went from persona ``before`` (None: new to the workspace) to
    persona ``after``, sorted."""

    before: str | None
    after: str
    accounts: list[str]


class JudgementEffect(TypedDict):
    """A judgement and what this run did with it.

    ``effect``: ``took effect`` (the run put the pair where the verdict says, the
    previous run had not), ``already held`` (a judgement made since the previous run
    that the previous run already satisfied), ``not applied`` (the pair is not where the
    verdict says: a conflict, see ``judgement_conflicts``), ``withdrawn`` (a judgement
    withdrawn since the previous run, whose pair the run then moved)."""

    a: str
    b: str
    verdict: str
    effect: str
    before: list[str | None]
    after: list[str | None]


class PersonaChange(TypedDict):
    """One connected change: the personas before and after, the accounts that moved
    between them, and the judgements on a pair inside it that took effect."""

    kind: str
    before: list[PersonaSize]
    after: list[PersonaSize]
    moves: list[Move]
    judgements: list[JudgementEffect]


class RunChanges(TypedDict):
    """What a link run changed since ``previous_run`` (None: the first run)."""

    previous_run: str | None
    compared_by: str
    splits: int
    merges: int
    moves: int
    grew: int
    accounts_moved: int
    accounts_new: int
    accounts_gone: int
    personas_new: int
    changes: list[PersonaChange]
    judgements: list[JudgementEffect]


def first_run() -> RunChanges:
    """The report of a run with no previous one to compare with."""
    return _empty(None)


def _empty(previous: str | None) -> RunChanges:
    return {"previous_run": previous, "compared_by": "membership", "splits": 0,
            "merges": 0, "moves": 0, "grew": 0, "accounts_moved": 0, "accounts_new": 0,
            "accounts_gone": 0, "personas_new": 0, "changes": [], "judgements": []}


def compare_runs(previous_run: str, before: Mapping[str, str], after: Mapping[str, str],
                 verdicts: Mapping[tuple[str, str], str],
                 since: Iterable[tuple[str, str, str, datetime | None]] = ()) -> RunChanges:
    """The changes from membership ``before`` (account -> persona id, the previous
    run's) to ``after`` (this run's).

    ``verdicts``: the standing judgements (pair ``a < b`` -> ``same`` / ``different`` /
    ``unsure``). ``since``: ``(a, b, verdict, withdrawn_at)`` of the judgements made or
    withdrawn since the previous run started (a standing one: ``withdrawn_at`` None).
    Deterministic: changes in the order of their smallest persona id after, moves and
    accounts sorted."""
    out = _empty(previous_run)
    cells: dict[tuple[str, str], list[str]] = defaultdict(list)
    new_by_persona: dict[str, list[str]] = defaultdict(list)
    for acc, q in after.items():
        p = before.get(acc)
        if p is None:
            new_by_persona[q].append(acc)
        else:
            cells[(p, q)].append(acc)
    out["accounts_new"] = sum(len(v) for v in new_by_persona.values())
    out["accounts_gone"] = sum(1 for acc in before if acc not in after)
    size_before = _sizes(before)
    size_after = _sizes(after)
    # connected groups of the (before, after) cells: union-find over persona ids
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x: tuple[str, str]) -> tuple[str, str]:
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for p, q in cells:
        ra, rb = find(("b", p)), find(("a", q))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for cell in sorted(cells):
        groups[find(("b", cell[0]))].append(cell)
    changes: list[PersonaChange] = []
    members: dict[int, set[str]] = {}
    for group in groups.values():
        olds = sorted({p for p, _ in group})
        news = sorted({q for _, q in group})
        grown = [q for q in news if new_by_persona.get(q)]
        if len(olds) == 1 and len(news) == 1:
            if not grown:
                continue
            kind = "grew"
        else:
            kind = "split" if len(olds) == 1 else "merge" if len(news) == 1 else "move"
        moves: list[Move] = [{"before": p, "after": q, "accounts": sorted(cells[(p, q)])}
                             for p, q in group]
        moves += [{"before": None, "after": q, "accounts": sorted(new_by_persona[q])}
                  for q in grown]
        moves.sort(key=lambda m: (m["after"], m["before"] or ""))
        changes.append({
            "kind": kind,
            "before": [{"persona_id": p, "accounts": size_before[p]} for p in olds],
            "after": [{"persona_id": q, "accounts": size_after[q]} for q in news],
            "moves": moves, "judgements": []})
        members[len(changes) - 1] = {a for m in moves for a in m["accounts"]}
        out["accounts_moved"] += _moved(group, cells)
    # personas made of new accounts only
    known = {q for _, q in cells}
    out["personas_new"] = sum(1 for q in new_by_persona if q not in known)
    order = sorted(range(len(changes)), key=lambda i: changes[i]["after"][0]["persona_id"])
    out["changes"] = [changes[i] for i in order]
    position = {i: k for k, i in enumerate(order)}
    member_of = {a: position[i] for i, accs in members.items() for a in accs}
    kinds = [c["kind"] for c in changes]
    out["splits"], out["merges"] = kinds.count("split"), kinds.count("merge")
    out["moves"], out["grew"] = kinds.count("move"), kinds.count("grew")
    out["judgements"] = _effects(before, after, verdicts, since)
    for e in out["judgements"]:
        i = member_of.get(e["a"], member_of.get(e["b"]))
        if i is not None and e["effect"] in ("took effect", "withdrawn"):
            out["changes"][i]["judgements"].append(e)
    return out


def _sizes(membership: Mapping[str, str]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for pid in membership.values():
        out[pid] += 1
    return out


def _moved(group: list[tuple[str, str]], cells: Mapping[tuple[str, str], list[str]]) -> int:
    """Accounts that left the bulk of their persona: for each persona before, the
    accounts outside the persona after that holds most of them (ties: the smaller id).
    A merge moves none, a split moves the pieces split off."""
    by_old: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for p, q in group:
        by_old[p].append((len(cells[(p, q)]), q))
    moved = 0
    for pieces in by_old.values():
        main = min(pieces, key=lambda x: (-x[0], x[1]))
        moved += sum(n for n, q in pieces if q != main[1])
    return moved


def _together(membership: Mapping[str, str], a: str, b: str) -> bool:
    pa = membership.get(a)
    return pa is not None and pa == membership.get(b)


def _effects(before: Mapping[str, str], after: Mapping[str, str],
             verdicts: Mapping[tuple[str, str], str],
             since: Iterable[tuple[str, str, str, datetime | None]]) -> list[JudgementEffect]:
    """Each judgement that took effect, already held (made since the previous run) or
    was not applied, and each one withdrawn since whose pair moved; by pair."""
    recent = {(a, b) for a, b, _, withdrawn in since if withdrawn is None}
    out: list[JudgementEffect] = []
    for (a, b), verdict in sorted(verdicts.items()):
        if verdict not in ("same", "different"):
            continue
        want = verdict == "same"
        was, now = _together(before, a, b), _together(after, a, b)
        if now != want:
            effect = "not applied"
        elif was != want:
            effect = "took effect"
        elif (a, b) in recent:
            effect = "already held"
        else:
            continue
        out.append(_effect(a, b, verdict, effect, before, after))
    seen = set(verdicts)
    for a, b, verdict, withdrawn in sorted(since, key=lambda r: (r[0], r[1], r[2])):
        if withdrawn is None or (a, b) in seen:
            continue
        seen.add((a, b))
        if _together(before, a, b) != _together(after, a, b):
            out.append(_effect(a, b, verdict, "withdrawn", before, after))
    out.sort(key=lambda e: (e["a"], e["b"]))
    return out


def _effect(a: str, b: str, verdict: str, effect: str, before: Mapping[str, str],
            after: Mapping[str, str]) -> JudgementEffect:
    return {"a": a, "b": b, "verdict": verdict, "effect": effect,
            "before": [before.get(a), before.get(b)], "after": [after.get(a), after.get(b)]}
