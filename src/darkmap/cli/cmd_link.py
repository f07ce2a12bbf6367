"""`darkmap link`, `darkmap persona show|search`, `darkmap judge`, `darkmap review`.

Each command imports the library it uses when it runs (#21): the linker and the store
load numpy, scipy and DuckDB, a second before ``darkmap link --help`` could print;
``darkmap persona show`` and ``darkmap judge`` need neither scipy nor the linker.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from darkmap.cli.common import (
    cell,
    checked,
    columns,
    emit_json,
    ident,
    ident_cell,
    line_width,
    main,
    open_ws,
    pad,
    say,
    say_parts,
    short,
    status_line,
    workspace_option,
)
from darkmap.errors import BadInputError
from darkmap.model.display import lookalike_pieces, shell_arg
from darkmap.resolve.options import DEFAULT_THRESHOLD, METHODS, LinkOptions

if TYPE_CHECKING:
    from collections.abc import Sequence

    from darkmap.assess.persona import PersonaAssessment
    from darkmap.resolve.changes import PersonaChange, PersonaSize, RunChanges
    from darkmap.resolve.link import LinkResult, LinkSummary
    from darkmap.resolve.lookup import PersonaDetail, PersonaHit
    from darkmap.resolve.review import JudgedEstimate, QueuedPair
    from darkmap.store.workspace import Workspace

__all__ = ["judge_cmd", "link_cmd", "persona", "review_cmd"]


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(x.strip() for v in values for x in v.split(",") if x.strip())


@main.command("link")
@workspace_option
@click.option("--method", type=click.Choice(METHODS), default="logistic", show_default=True,
              help="logistic: shipped trained model (better calibrated on held-out worlds); "
              "fellegi-sunter: m/u weights fitted on this workspace's own pairs, "
              "weighted by the shipped model (docs/linking.md).")
@click.option("--signals", multiple=True,
              help="Only these signals (comma list; 'identifiers' = pgp,crypto,contact).")
@click.option("--without", multiple=True,
              help="Leave signals out, e.g. --without identifiers (text and behaviour alone).")
@click.option("--threshold", type=float, default=DEFAULT_THRESHOLD, show_default=True,
              callback=checked(lambda v: LinkOptions(threshold=v)),
              help="Mean match log-odds over all cross pairs needed to merge two groups, as "
                   "a probability (higher: fewer, surer merges).")
@click.option("--engine", type=click.Choice(["embedded", "spark"]), default="embedded",
              help="embedded (default: this process) or spark (same personas and links).")
@click.option("--master", default="local[2]", show_default=True,
              help="Spark master URL with --engine spark (local[N], spark://..., k8s://...).")
@click.option("--learn", is_flag=True,
              help="Refit how much the handle and the writing count to the analysts' "
                   "judgements (at least 20, 5 of each verdict) before linking "
                   "(docs/linking.md, \"Learning from judgements\").")
@click.option("--report", is_flag=True,
              help="Then estimate precision and recall from the analysts' judgements, with "
                   "95% intervals (`darkmap review --estimate`).")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No status line while linking.")
def link_cmd(workspace: Path | None, method: str, signals: tuple[str, ...],
             without: tuple[str, ...], threshold: float, engine: str, master: str,
             learn: bool, report: bool, as_json: bool, quiet: bool) -> None:
    """Link accounts into personas (across and within markets), with explanations.

    Re-running replaces personas and links; analyst judgements always hold.

    \b
    Example: darkmap link -w case-42 --without identifiers
    Example: darkmap link -w case-42 --engine spark --master spark://head:7077
    """
    opts = LinkOptions(method=method, signals=_split(signals) or None,
                       without=_split(without), threshold=threshold, learn=learn)
    from darkmap.api import link  # noqa: PLC0415
    from darkmap.resolve.review import judged_estimate  # noqa: PLC0415

    ws = open_ws(workspace)
    try:
        if quiet or as_json:
            res = link(ws, opts, engine, master)
        else:
            res = _link_with_status(ws, opts, engine, master)
        est = judged_estimate(ws) if report else None
    finally:
        ws.close()
    if as_json:
        emit_json({**res.summary, **({"judged_estimate": est.as_dict()} if est else {})})
        return
    _print_summary(res.summary)
    if est is not None:
        _print_estimate(est)


def _link_with_status(ws: Workspace, opts: LinkOptions, engine: str,
                      master: str) -> LinkResult:
    """:func:`~darkmap.api.link` under a status line: the stage running (with its
    counts), the time in it and in the whole run; gone when the run ends."""
    from darkmap.api import link  # noqa: PLC0415

    with status_line("link") as stage:
        return link(ws, opts, engine, master, progress=stage)


@main.command("review")
@workspace_option
@click.option("-n", "count", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="Pairs to propose.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random draw within strata.")
@click.option("--estimate", is_flag=True,
              help="Instead: precision and recall estimated from the judgements so far.")
@click.option("--json", "as_json", is_flag=True)
def review_cmd(workspace: Path | None, count: int, seed: int, estimate: bool,
               as_json: bool) -> None:
    """Pairs whose judgement teaches most about the linking, and what judgements say.

    Judge each with `darkmap judge A B --same|--different`; `darkmap link` then holds
    them, and `--estimate` (or `darkmap link --report`) gives precision and recall with
    95% intervals (docs/linking.md, "Review queue"). A pair judged `--unsure` is not
    proposed again and is left out of the estimate.

    Example: darkmap review -w case-42 -n 10
    """
    from darkmap.resolve.review import (  # noqa: PLC0415
        judged_estimate,
        left_apart_queue,
        review_queue,
    )

    ws = open_ws(workspace, read_only=True)
    try:
        if estimate:
            est = judged_estimate(ws, seed=seed)
            queue, apart = [], []
        else:
            queue = review_queue(ws, n=count, seed=seed)
            apart = left_apart_queue(ws, n=count, seed=seed)
    finally:
        ws.close()
    if estimate:
        if as_json:
            emit_json(est.as_dict())
        else:
            _print_estimate(est)
        return
    if as_json:
        emit_json([{"a": q.a, "b": q.b, "score": q.score, "merged": q.merged,
                    "stratum": q.stratum, "evidence": dict(q.evidence), "list": name}
                   for name, qs in (("queue", queue), ("left_apart", apart)) for q in qs])
        return
    if not queue:
        say("nothing to review: no unjudged scored pair (run `darkmap link` first)")
        return
    _print_queued(queue)
    if apart:
        say(f"left apart at or above the merge threshold ({len(apart)}, beside the queue's"
            " draw, in random order: leads the clustering did not merge):")
        _print_queued(apart)


def _print_queued(queue: Sequence[QueuedPair]) -> None:
    """Each proposed pair: its ends, score, merge state, strongest signals and the
    `darkmap judge` line to paste."""
    for q in queue:
        ev = ", ".join(f"{k} {v:+.1f}" for k, v in q.evidence[:4])
        say(f"{ident(q.a, 40)} ~ {ident(q.b, 40)}  p={q.score:.3f} "
            f"{'merged' if q.merged else 'apart'}  [{short(ev, 90)}]")
        # a line to paste into a shell: the ids quoted, as handles may hold ; | $( or '
        say(f"  darkmap judge {shell_arg(q.a)} {shell_arg(q.b)} --same|--different")


def _print_estimate(e: JudgedEstimate) -> None:
    """The judged estimate in a few lines."""
    say(f"judged {e.judged:,} of {e.candidates:,} scored pairs ({e.merged:,} merged)")
    if not e.candidates:
        say("no precision or recall to estimate: no scored pair (run `darkmap link` first)")
        return
    if not e.judged:
        say("no precision or recall to estimate yet: judge the pairs `darkmap review` "
            "proposes (`darkmap judge A B --same|--different`)")
        return
    say(f"precision of merged pairs {e.precision:.3f} (95% {e.precision_interval[0]:.3f}-"
        f"{e.precision_interval[1]:.3f}); recall of scored pairs {e.recall:.3f} "
        f"(95% {e.recall_interval[0]:.3f}-{e.recall_interval[1]:.3f})")
    j = e.calibration.as_judged()
    say(f"as judged ({j['judged_merged']:,} merged pairs, {j['judged_apart']:,} apart), a "
        f"merged pair scored {' / '.join(f'{x:g}' for x in j['scores'])} is one vendor's "
        f"{' / '.join(f'{x:.2f}' for x in j['merged'])}; one left apart, "
        f"{' / '.join(f'{x:.2f}' for x in j['apart'])}")
    for t in e.by_threshold:
        lo, hi = t["precision_95"]
        say(f"  pairs scored >= {t['score_at_least']}: {t['pairs']:,}, pairwise precision "
            f"{t['pairwise_precision']:.3f} (95% {lo:.3f}-{hi:.3f})")


def _print_summary(s: LinkSummary) -> None:
    """A link run in three lines (and a warning per judgement conflict)."""
    say(f"run {s['run_id']}: {s['accounts']:,} accounts -> {s['personas']:,} personas "
        f"({s['multi_account_personas']:,} with several accounts, "
        f"{s['cross_market_personas']:,} across markets) in {s['seconds']} s")
    say(f"scored {s['candidate_pairs'] + s['completion_pairs']:,} pairs, stored "
        f"{s['links_stored']:,} links; model {s['model']}")
    _print_learnt(s["judged_fit"])
    for a, b in s["judgement_conflicts"]:
        say(f"warning: 'same' judgement {ident(a)} ~ {ident(b)} conflicts with a 'different' "
            "one; not merged", err=True)
    _print_changes(s["changes"])


def _print_learnt(fit: dict[str, Any]) -> None:
    """What ``--learn`` did: the refit from the judgements, or why there was none (found
    by an audit: with too few judgements the run said nothing, and read as refitted)."""
    if fit.get("fitted"):
        factors = ", ".join(f"{g} x{v}" for g, v in fit.get("group_factors", {}).items())
        say(f"learnt from {fit['judged_pairs']:,} judged pairs ({fit['same']:,} same, "
            f"{fit['different']:,} different): base shift {fit['base_shift']:+}"
            + (f"; {factors}" if factors else ""))
    elif "judged_pairs" in fit:  # asked for (--learn), not possible
        say(f"warning: --learn did not refit: it {fit['why_not']} (has "
            f"{fit['judged_pairs']:,}: {fit['same']:,} same, {fit['different']:,} different); "
            "linked with the shipped model", err=True)


_SHOWN_CHANGES = 10
"""Changes a link run prints (``--json`` has every one)."""


def _print_changes(c: RunChanges) -> None:
    """What the run changed since the previous one: counts, then the first changes with
    the accounts that moved and the judgements behind them, then the judgements."""
    if c["previous_run"] is None:
        say("changes: none to report (the first link run of this workspace)")
        return
    say(f"changes since run {c['previous_run']}: {c['splits']:,} split, {c['merges']:,} "
        f"merged, {c['moves']:,} regrouped, {c['grew']:,} grown; accounts: "
        f"{c['accounts_moved']:,} moved, {c['accounts_new']:,} new")
    for change in c["changes"][:_SHOWN_CHANGES]:
        for line in change_lines(change):
            say("  " + line)
    if len(c["changes"]) > _SHOWN_CHANGES:
        say(f"  ... and {len(c['changes']) - _SHOWN_CHANGES:,} more (--json lists every "
            "change; `darkmap persona show ID` says what changed for a persona)")
    effects = [e for e in c["judgements"] if e["effect"] != "already held"]
    held = len(c["judgements"]) - len(effects)
    if effects or held:
        took = sum(e["effect"] == "took effect" for e in effects)
        say(f"judgements: {took:,} took effect" + (f", {held:,} made since the previous "
                                                    "run held already" if held else ""))
    for e in effects[:_SHOWN_CHANGES]:
        say(f"  {e['verdict']} {ident(e['a'], 30)} ~ {ident(e['b'], 30)}: {e['effect']},"
            f" {_where(e['after'])}")
    if len(effects) > _SHOWN_CHANGES:
        say(f"  ... and {len(effects) - _SHOWN_CHANGES:,} more (--json lists them)")


def _where(pids: list[str | None]) -> str:
    """"now together in P" or "now apart: P, Q"."""
    a, b = pids
    return f"now together in {a}" if a is not None and a == b else f"now apart: {a}, {b}"


def _side(personas: Sequence[PersonaSize], n: int = 3) -> str:
    """Up to ``n`` personas as "id (accounts)"."""
    shown = [f"{p['persona_id']} ({p['accounts']})" for p in personas[:n]]
    return ", ".join(shown) + (f" +{len(personas) - n} more" if len(personas) > n else "")


def change_lines(c: PersonaChange, accounts: int = 3) -> list[str]:
    """A change in a few lines: the personas before and after with their sizes, then
    the accounts that went from one to another (a few of each: market text, cut), and
    the judgements that took effect in it."""
    head = f"{c['kind']}: {_side(c['before'])} -> {_side(c['after'])}"
    out = [head]
    moved = [m for m in c["moves"] if m["before"] != m["after"]]
    for m in moved[:accounts]:
        few = ", ".join(ident(a, 30) for a in m["accounts"][:accounts])
        more = f" +{len(m['accounts']) - accounts}" if len(m["accounts"]) > accounts else ""
        origin = "new" if m["before"] is None else m["before"]
        out.append(f"    {few}{more}: {origin} -> {m['after']}")
    if len(moved) > accounts:
        out.append(f"    ... {len(moved) - accounts} more group(s) of accounts moved")
    for e in c["judgements"]:
        out.append(f"    judgement {e['effect']}: {e['verdict']} {ident(e['a'], 30)} ~ "
                   f"{ident(e['b'], 30)}")
    return out


@main.group("persona")
def persona() -> None:
    """Inspect personas built by `darkmap link`.

    Example: darkmap persona search -w case-42 tramapro
    """


@persona.command("show")
@click.argument("ref")
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def persona_show(ref: str, workspace: Path | None, as_json: bool) -> None:
    """Show a persona (by persona id or any member account id) and why it holds.

    Example: darkmap persona show dream:frostking -w case-42
    """
    from darkmap.assess.persona import persona_assessment  # noqa: PLC0415
    from darkmap.resolve.lookup import show_persona  # noqa: PLC0415

    ws = open_ws(workspace, read_only=True)
    try:
        d = show_persona(ws, ref)
        a = persona_assessment(ws, d["persona_id"], [m["account_id"] for m in d["accounts"]],
                               limit=None if as_json else 20)
    finally:
        ws.close()
    if as_json:
        emit_json({**d, "assessment": a})
        return
    _print_persona(d, a)


def _print_persona(d: PersonaDetail, assessment: PersonaAssessment | None) -> None:
    """A persona as text: head line, accounts, identifiers, what the assessment says
    (country, sales, listings), links with why, judgements, then the commands that show
    its wallets and its evidence. Handles, identifiers, titles and notes come from the
    evidence or analysts: escapes shown, long ones cut (``--json`` prints them whole)."""
    width = line_width()
    coh = f"{d['cohesion']:.2f}" if d["cohesion"] is not None else "-"
    say(f"{d['persona_id']}  {ident(d['label'], 30, account_id=False)}  "
        f"accounts={d['n_accounts']} "
        f"markets={d['n_markets']} cohesion={coh}")
    say("  (cohesion: the mean match probability of its accounts' pairs, 0-1; "
        "- for a single account)")
    for change in d["changed_in_last_run"]:
        lines = change_lines(change)
        say(f"changed in the last run ({d['run_id']}): {lines[0]}")
        for line in lines[1:]:
            say(line)
    say("accounts:")
    for a in d["accounts"]:
        say(f"  {ident_cell(a['account_id'], 40)} {a['role'] or '-':7s} "
            f"{_day(a['active_from'])} .. {_day(a['active_to'])}  listings={a['listings']}")
    if d["identifiers"]:
        say("identifiers:")
        for i in d["identifiers"]:
            value = short(i["value"], width - 24)
            say(f"  {cell(i['kind'], 16)} {value}  ("
                f"{_ids(i['accounts'], max(width - 24 - columns(value), 24))})")
    _print_assessment(assessment)
    if d["links"]:
        say("links:")
    for lk in d["links"]:
        say(f"  {ident(lk['a'], 36)} ~ {ident(lk['b'], 36)}  p={lk['score']:.3f}"
            f"{'' if lk['merged'] else '  (not merged)'}")
        for s in lk["signals"]:
            if s.get("contribution"):
                claims = s.get("claims") or []
                value = "" if claims and not s["value"] else \
                    f"  (value {short(s['value'], 30)})"
                say(f"      {s['signal']:10s} {s['contribution']:+6.2f}  {s['level']}{value}")
                for c in claims:  # what the level's claim rests on, in full
                    say(f"        {short(c, width - 8)}")
    _print_left_apart(d)
    for j in d["judgements"]:
        said = (f"judgement: {ident(j['a'], 30)} ~ {ident(j['b'], 30)}: {j['verdict']} by "
                f"{short(j['author'], 20)} {str(j['created_at'])[:19]}")
        say(f"{said} {short(j['note'] or '', max(width - columns(said) - 1, 20))}".rstrip())
    _print_next(d)


def _print_left_apart(d: PersonaDetail) -> None:
    """The stored links to accounts outside the persona that scored at or above the
    merge threshold but were not merged: the account, its persona, the score and why
    the clustering kept them apart (docs/linking.md, "Links left apart")."""
    if not d["left_apart"]:
        return
    say("left apart (stored links at or above the merge threshold, not merged):")
    for x in d["left_apart"]:
        say(f"  {ident(x['member'], 36)} ~ {ident(x['other'], 36)}  p={x['score']:.3f}"
            f"  (in {x['other_persona'] or 'no persona'})")
        parts = [_marked(w, 200) for w in x["why"].split("; ")]
        say_parts("      " + parts[0], *parts[1:], indent="        ")
        say(f"      judge: darkmap judge {shell_arg(x['member'])} {shell_arg(x['other'])} "
            "--same|--different")


def _marked(text: str, max_chars: int) -> str:
    """A sentence naming account ids (:func:`short`, each piece cut to ``max_chars``),
    each id that may print like a name it is not followed by its mark."""
    return "".join(short(piece, max_chars) + (f" {mark}" if mark else "")
                   for piece, mark in lookalike_pieces(text))


def _ids(accounts: list[str], width: int) -> str:
    """Account ids joined by commas in about ``width`` columns, each marked when it may
    print like a name it is not (:func:`~darkmap.cli.common.ident`): the marks are
    never cut, the ids past the room are counted."""
    shown: list[str] = []
    used = 0
    for k, a in enumerate(accounts):
        one = ident(a, max(width - used, 12))
        if shown and used + columns(one) > width:
            return ", ".join(shown) + f" +{len(accounts) - k} more"
        shown.append(one)
        used += columns(one) + 2
    return ", ".join(shown)


def _day(t: object) -> str:
    """A time's day (YYYY-MM-DD), ``unknown`` when there is none."""
    return "unknown" if t is None else str(t)[:10]


def _print_assessment(a: PersonaAssessment | None) -> None:
    """Country with how sure, orders and revenue with 90% ranges, the first listings:
    one line each within :func:`~darkmap.cli.common.line_width` (listing id, flags,
    substance, dose, pack and price first; the title gets what is left, cut)."""
    if a is None:
        say("assessment: none yet (run `darkmap assess`)")
        return
    where = (f"ships from {short(a['country'], 2)} (how sure: {a['country_confidence']:.2f})"
             if a["country"] else "ships from: unknown")
    orders = (f"orders {_span3(a['orders'])}" if a["orders"]
              else "orders: not captured (no counter or feedback)")
    rev = [f"revenue USD {_span3(a['revenue_usd'])}"] if a["revenue_usd"] else []
    ranges = " (90% ranges)" if a["orders"] else ""
    say_parts(f"assessment: {where}", *[orders, *rev][:-1],
              [orders, *rev][-1] + ranges)
    say_parts(f"listings ({len(a['listings'])} of {a['listings_total']}; fent: fentanyl "
              "risk, cfp: counterfeit pill, first;", "dose, pack, price in USD):", sep=" ")
    rows = []
    for x in a["listings"]:
        flags = ",".join(f for f, on in (("fent", x["fentanyl_risk"]),
                                         ("cfp", x["counterfeit_pill"])) if on)
        dose = f"{x['dose_mg']:g} mg" if x["dose_mg"] else "-"
        units = f"x{x['units']:g} {short(x['unit_kind'], 8)}" if x["units"] else "-"
        price = f"${x['pack_price_usd']:,.2f}" if x["pack_price_usd"] is not None else "-"
        each = (f" (${x['unit_price_usd']:,.2f}/{short(x['unit_kind'], 8)})"
                if x["unit_price_usd"] is not None and x["units"] else "")
        rows.append((short(x["listing_id"], 24), flags, short(x["substance"] or "-", 20),
                     dose, units, price + each, x["title"] or ""))
    if not rows:
        return
    # each column as wide as its widest value (the id and the substance cut at 24 and 20)
    w = [max(columns(r[k]) for r in rows) for k in range(6)]
    room = line_width() - (2 + sum(w) + 5 + 2)
    for r in rows:
        line = "  " + " ".join(pad(r[k], w[k], right=k >= 3) for k in range(6))
        say(line + (f"  {short(r[6], room)}" if room >= 8 and r[6] else ""))


def _span3(v: Sequence[float | None]) -> str:
    """"est (low-high)" with thousands separators."""
    est, lo, hi = (x or 0.0 for x in v)
    return f"{est:,.0f} ({lo:,.0f}-{hi:,.0f})"


def _print_next(d: PersonaDetail) -> None:
    """The commands that go on from this persona: its wallets, its evidence."""
    pid = shell_arg(d["persona_id"])
    for i in d["identifiers"]:
        if i["kind"] == "btc_address" and i["value"]:
            say_parts(f"wallet: darkmap wallet show {shell_arg(i['value'])}",
                      f"then darkmap trace {shell_arg(i['value'])} --forward (cash-out)")
    say_parts(f"next: darkmap persona show {pid} --json (every listing, values whole)",
              f"darkmap export ftm --persona {pid} -o persona.ftm.json")


@persona.command("search")
@click.argument("text")
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def persona_search(text: str, workspace: Path | None, as_json: bool) -> None:
    """Find personas by handle (or fragment), PGP fingerprint, address or contact.

    Example: darkmap persona search 3A1F9C -w case-42
    """
    from darkmap.resolve.lookup import search_personas  # noqa: PLC0415

    ws = open_ws(workspace, read_only=True)
    try:
        hits = search_personas(ws, text)
    finally:
        ws.close()
    if as_json:
        emit_json(hits)
        return
    _print_hits(hits)


_SHOWN_MATCHES = 5
"""Matches `persona search` prints under each persona (``--json`` has every one)."""


def _print_hits(hits: list[PersonaHit]) -> None:
    """A line per persona found, then up to five of its matches, one per line, each cut
    to the line's width (one line held them all: 350 columns for one persona, found by
    an audit)."""
    if not hits:
        say("no persona matches")
    width = line_width()
    for h in hits:
        counts = f"accounts={h['n_accounts']} markets={h['n_markets']}"
        room = width - len(h["persona_id"]) - len(counts) - 4
        say(f"{h['persona_id']}  {ident(h['label'], room, account_id=False)}  {counts}")
        for m in h["matches"][:_SHOWN_MATCHES]:
            aid = ident(m["account_id"], width // 2)
            say(f"  {aid} " + short(f"({m['matched']}: {m['value']})",
                                   max(width - 3 - columns(aid), 20)))
        if len(h["matches"]) > _SHOWN_MATCHES:
            say(f"  ... and {len(h['matches']) - _SHOWN_MATCHES} more (--json lists all)")


@main.command("judge")
@click.argument("a")
@click.argument("b")
@workspace_option
@click.option("--same", is_flag=True, help="The two accounts are one vendor.")
@click.option("--different", is_flag=True, help="They are not.")
@click.option("--unsure", is_flag=True, help="Record doubt, no constraint.")
@click.option("--withdraw", "withdraw_", is_flag=True, help="Withdraw standing judgements.")
@click.option("--note", default=None, help="Why.")
@click.option("--author", default=None, help="Who [default: $USER].")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def judge_cmd(a: str, b: str, workspace: Path | None, same: bool, different: bool,
              unsure: bool, withdraw_: bool, note: str | None, author: str | None,
              as_json: bool) -> None:
    """Record an analyst verdict on two accounts; `darkmap link` always respects it.

    Give exactly one of --same, --different, --unsure and --withdraw.

    Example: darkmap judge dream:frostking agora:fr0stk1ng --same --note "same PGP key"
    """
    verdict = _verdict(same=same, different=different, unsure=unsure, withdraw_=withdraw_)
    from darkmap.resolve.judgements import judge, withdraw  # noqa: PLC0415

    ws = open_ws(workspace)
    try:
        if withdraw_:
            n = withdraw(ws, a, b)
        else:
            out = judge(ws, a, b, str(verdict), author=author, note=note)
    finally:
        ws.close()
    if withdraw_:
        if as_json:
            emit_json({"withdrawn": n})
        else:
            say(f"withdrew {n} judgement(s) on {ident(a)} ~ {ident(b)}")
    elif as_json:
        emit_json(out)
    else:
        say(f"{ident(out['a'])} ~ {ident(out['b'])}: {out['verdict']} (by "
            f"{short(out['author'])}); re-run `darkmap link` to apply")


def _verdict(**flags: bool) -> str | None:
    """The one verdict flag given (``None`` for --withdraw); a usage error unless exactly
    one of --same, --different, --unsure, --withdraw is given."""
    given = [name for name, on in flags.items() if on]
    verdict = next((g for g in given if g != "withdraw_"), None)
    from darkmap.resolve.judgements import check_request  # noqa: PLC0415

    try:
        if len(given) > 1:
            raise BadInputError("give exactly one of --same, --different, --unsure, "
                                f"--withdraw (got {len(given)})")
        check_request(verdict, "withdraw_" in given)
    except BadInputError as exc:
        raise click.UsageError(str(exc)) from exc
    return verdict
