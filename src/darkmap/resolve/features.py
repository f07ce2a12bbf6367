"""Pairwise comparisons of two accounts: raw signal values and their agreement levels.

Every signal is computed for all candidate pairs at once (arrays in, arrays out). Raw
values are kept for explanations; the model reads the discrete *level* of each signal
(level 0 is always "no evidence"/"not comparable", contributing nothing informative).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from rapidfuzz.distance import Levenshtein
from scipy.sparse.csgraph import connected_components

from darkmap.resolve.candidates import migration_successor, mutual_best_successors
from darkmap.resolve.normalise import handle_forms
from darkmap.resolve.profiles import Profiles
from darkmap.resolve.vectors import row_cosines

__all__ = ["CLAIMED", "IDENTIFIER_SIGNALS", "SIGNALS", "TIED", "PairFeatures",
           "claim_agrees", "claimed_pairs", "compare", "identifier_groups", "tied_through_others"]

# writing style: shared shingles as a multiple of what two random accounts share
_RATIO_BINS = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0]
_RATIO_LEVELS = ("no text", "<1x chance", "1-1.5x chance", "1.5-2x chance", "2-2.5x chance",
                 "2.5-3x chance", "3-3.5x chance", "3.5-4x chance", "4-5x chance",
                 "5-6x chance", ">=6x chance")
# rare phrases: strangers share almost none, so the multiples run much higher
_RARE_BINS = [1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 30.0]
_RARE_LEVELS = ("no text", "<1x chance", "1-1.5x chance", "1.5-2x chance", "2-3x chance",
                "3-5x chance", "5-8x chance", "8-12x chance", "12-20x chance",
                "20-30x chance", ">=30x chance")

# signal -> level labels; index = level code.
SIGNALS: dict[str, tuple[str, ...]] = {
    "pgp": ("no key on one side", "different keys", "same key"),
    "crypto": ("no address on one side", "different addresses", "shared address"),
    "contact": ("no contact on one side", "different contacts", "shared contact"),
    "handle": ("unlike", "weakly alike (>=0.5)", "alike (>=0.7)", "very alike (>=0.85)",
               "same normalised handle, common (>3 accounts)",
               "same normalised handle, rare (<=3 accounts)",
               "same handle, common (>3 accounts)", "same handle, rare (<=3 accounts)"),
    "style": _RATIO_LEVELS,
    "phrasing": _RATIO_LEVELS,
    "rare_phrases": _RARE_LEVELS,
    "capitals": ("no text", "<0.5", "0.5-0.7", "0.7-0.8", "0.8-0.9", "0.9-0.95", ">=0.95"),
    "symbols": ("no text", "<0.2", "0.2-0.3", "0.3-0.4", "0.4-0.5", "0.5-0.6", "0.6-0.7",
                "0.7-0.8", ">=0.8"),
    "products": ("no listings", "<0.15", "0.15-0.3", "0.3-0.5", "0.5-0.7", ">=0.7"),
    "price": ("no comparable items", "log-diff >0.5", "0.25-0.5", "0.1-0.25", "<0.1"),
    "ships_from": ("unknown", "different origin", "same origin, common (>=20% of accounts)",
                   "same origin, 5-20% of accounts", "same origin, rare (<5% of accounts)"),
    "ships_to": ("unknown", "jaccard <0.3", "0.3-0.7", ">=0.7"),
    "timing": ("unknown", "gap >1y", "gap 90d-1y", "succession (gap <90d)",
               "overlap >30d"),
    "feedback": ("no feedback", "<0.15", "0.15-0.3", "0.3-0.45", ">=0.45"),
    "market": ("different markets", "same market"),
    "migration": ("no closure between them", "successor across a closure (<=90d)",
                  "successor, mutual best product match across the closure"),
}
IDENTIFIER_SIGNALS = ("pgp", "crypto", "contact")
# raw value of a pair (1/0): its two accounts share no identifier themselves but are
# tied *through other accounts* by a chain of shared identifiers
# (:func:`identifier_groups`); the model reads a different key, address or contact
# between them as no evidence (:data:`darkmap.resolve.match_model.TIED_LEVEL`)
TIED = "identifiers_tied"
# raw value of a pair: 1 when the first account's own text claims the second (its
# market and handle: :mod:`darkmap.resolve.claims`), 2 the other way round, 3 both; the
# contact signal is then "shared contact" (docs/linking.md, "Claims")
CLAIMED = "contact_claimed"

_BINS: dict[str, list[float]] = {
    "style": _RATIO_BINS,
    "phrasing": _RATIO_BINS,
    "rare_phrases": _RARE_BINS,
    "capitals": [0.5, 0.7, 0.8, 0.9, 0.95],
    "symbols": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
    "products": [0.15, 0.3, 0.5, 0.7],
    "feedback": [0.15, 0.3, 0.45],
    "ships_to": [0.3, 0.7],
}


@dataclass
class PairFeatures:
    """Raw values and levels of every signal for pairs ``(i[k], j[k])``."""

    i: np.ndarray
    j: np.ndarray
    raw: dict[str, np.ndarray]
    level: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.i)

    def subset(self, mask: np.ndarray) -> PairFeatures:
        """The pairs where ``mask`` is true (or at the positions ``mask`` lists)."""
        return PairFeatures(self.i[mask], self.j[mask],
                            {k: v[mask] for k, v in self.raw.items()},
                            {k: v[mask] for k, v in self.level.items()})


def _binned(values: np.ndarray, has: np.ndarray, bins: list[float]) -> np.ndarray:
    lev = np.digitize(values, bins) + 1
    return np.where(has, lev, 0).astype(np.int8)


def _ident(p: Profiles, group: str, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, ...]:
    m = p.idents[group]
    shared = row_cosines(m, i, j)  # binary rows: dot product = shared values
    nnz = np.diff(m.indptr)
    both = (nnz[i] > 0) & (nnz[j] > 0)
    lev = np.where(shared > 0, 2, np.where(both, 1, 0)).astype(np.int8)
    return shared, lev


def identifier_groups(p: Profiles, groups: tuple[str, ...]) -> np.ndarray:
    """Per account, the number of its group of accounts *tied by shared identifiers*,
    or -1 for an account that shares none.

    Two accounts that share a compared value of one of ``groups`` (a PGP key, an
    address or a contact held by 2..5 accounts; a value on more is not compared, see
    :mod:`darkmap.resolve.profiles`) are in one group, and so is every chain of such
    accounts: a vendor who lists his old and his new key on one account ties the
    accounts that list only the one or only the other. Only the groups in use count,
    so a link run without keys (``--without pgp``) does not tie accounts by keys."""
    mats = [p.idents[g] for g in groups if g in p.idents and p.idents[g].nnz]
    n = len(p)
    if not mats or n == 0:
        return np.full(n, -1, np.int64)
    m = sp.csr_matrix(sp.hstack(mats, format="csr"))
    co = (m @ m.T).tocoo()
    off = co.row != co.col
    g = sp.coo_matrix((np.ones(int(off.sum())), (co.row[off], co.col[off])), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    size = np.bincount(comp)
    out: np.ndarray = np.where(size[comp] > 1, comp, -1).astype(np.int64)
    return out


def tied_through_others(group: np.ndarray, i: np.ndarray, j: np.ndarray,
                        levels: list[np.ndarray]) -> np.ndarray:
    """1 for the pairs whose accounts are in one group of :func:`identifier_groups`
    (``group``) but share no identifier themselves (no identifier signal of ``levels``
    at "shared", 2): tied only through other accounts. A pair that shares an identifier
    is left to the model as it is: what its shared value and its other values say
    together is what the model was fitted on."""
    own = np.zeros(len(i), dtype=bool)
    for lev in levels:
        own |= lev == 2
    out: np.ndarray = ((group[i] >= 0) & (group[i] == group[j]) & ~own).astype(np.int8)
    return out


_RARE = 3  # a handle (key) held by at most this many accounts of the workspace


def _codes(values: list[str]) -> np.ndarray:
    """An int per value, equal where the values are equal; -1 for an empty one."""
    seen: dict[str, int] = {}
    return np.fromiter((seen.setdefault(v, len(seen)) if v else -1 for v in values),
                       dtype=np.int64, count=len(values))


def _claim_keys(p: Profiles) -> tuple[np.ndarray, np.ndarray]:
    """Each account's code of (market, handle skeleton), -1 for none, and the sorted
    int keys ``account * n + code`` of every (account, claimed account's code)."""
    n = len(p)
    skels = p.skeleton or p.hkey
    codes: dict[tuple[str, str], int] = {}
    own = np.fromiter((codes.setdefault((str(p.market[k]), skels[k]), len(codes))
                       if skels[k] else -1 for k in range(n)), dtype=np.int64, count=n)
    keys = [a * n + codes[(c.market, c.handle)]
            for a, cs in enumerate(p.claims) for c in cs if (c.market, c.handle) in codes]
    return own, np.unique(np.array(keys, dtype=np.int64))


def claim_agrees(p: Profiles, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Per pair, 1 when account ``i``'s claims name account ``j`` (its market and its
    handle, up to case and separators), 2 when ``j``'s name ``i``, 3 both, else 0."""
    out = np.zeros(len(i), dtype=np.int8)
    if not p.claims or not any(p.claims) or not len(i):
        return out
    own, keys = p.derive(("claim keys",), lambda: _claim_keys(p))
    n = len(p)
    for a, b, flag in ((i, j, 1), (j, i, 2)):
        hit = (own[b] >= 0) & np.isin(a * n + own[b], keys)
        out[hit] += flag
    return out


def claimed_pairs(p: Profiles) -> np.ndarray:
    """Every pair ``(a, b)``, ``a < b``, where one account's claims name the other: the
    linker scores them whatever the candidate blocks found."""
    n = len(p)
    if not p.claims or not any(p.claims) or n == 0:
        return np.zeros((0, 2), np.int64)
    own, keys = p.derive(("claim keys",), lambda: _claim_keys(p))
    claimer, code = keys // n, keys % n
    order = np.argsort(own, kind="stable")
    lo = np.searchsorted(own[order], code, side="left")
    hi = np.searchsorted(own[order], code, side="right")
    rows = [(int(a), int(b)) for a, s, e in zip(claimer.tolist(), lo.tolist(), hi.tolist(),
                                               strict=True)
            for b in order[s:e].tolist() if b != a]
    if not rows:
        return np.zeros((0, 2), np.int64)
    out = np.sort(np.array(rows, dtype=np.int64), axis=1)
    uniq: np.ndarray = np.unique(out, axis=0)
    return uniq


def _handle_codes(p: Profiles) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Codes of each account's normalised handle key, of its exact handle (skeleton)
    and of its two one-transformation forms (:func:`handle_forms`), so that pairs
    compare them as integers."""
    forms = [handle_forms(h) for h in p.handle]
    return (_codes(p.hkey), _codes(p.skeleton or p.hkey), _codes([f[0] for f in forms]),
            _codes([f[1] for f in forms]))


def _handle(p: Profiles, i: np.ndarray, j: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Handle similarity, with agreement weighted by how common the name is.

    As in frequency-based record linkage (agreeing on a rare surname says more than
    agreeing on "Smith"), two accounts with the same normalised handle are told apart
    by how many accounts of the workspace carry it: names built from common words
    collide by chance more and more as the workspace grows. Exact handles (up to
    case and separators) rank above handles equal only after digits, leetspeak and
    affixes are stripped, and such handles must be equal after one of the two (digits
    dropped or leetspeak read), not only after both. The third array is how many
    accounts hold the shared name (0 where the names differ): the model weighs a common
    one down by that count (:data:`darkmap.resolve.match_model.FREQUENCY_ADJUSTED`).
    """
    cos = row_cosines(p.handle_grams, i, j)
    keys = p.hkey
    lev_sim = np.fromiter(
        (Levenshtein.normalized_similarity(keys[a], keys[b])
         for a, b in zip(i.tolist(), j.tolist(), strict=True)),
        dtype=np.float32, count=len(i))
    key_code, skel_code, drop_code, leet_code = p.derive(("handle codes",),
                                                         lambda: _handle_codes(p))
    # one key after one transformation, digits dropped or leetspeak read: both together
    # read a digit two ways ("g3cko" and "Gecko99" are both "gecko")
    one_form = (drop_code[i] == drop_code[j]) | (leet_code[i] == leet_code[j])
    same = (key_code[i] == key_code[j]) & (key_code[i] >= 0) & one_form
    exact = same & (skel_code[i] == skel_code[j])
    n_key = p.hkey_count[i] if p.hkey_count is not None else np.ones(len(i), np.int64)
    n_skel = p.skeleton_count[i] if p.skeleton_count is not None else n_key
    sim = np.maximum(cos, lev_sim)
    lev = np.digitize(sim, [0.5, 0.7, 0.85]).astype(np.int8)
    lev[same] = np.where(n_key[same] <= _RARE, 5, 4)
    lev[exact] = np.where(n_skel[exact] <= _RARE, 7, 6)
    sim[same] = 1.0
    holders = np.where(exact, n_skel, np.where(same, n_key, 0)).astype(np.int32)
    return sim, lev, holders


def _price(p: Profiles, i: np.ndarray, j: np.ndarray,
           chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    diff = np.full(len(i), np.nan, dtype=np.float32)
    if p.price_keys is None or p.price_mask is None:
        return diff, np.zeros(len(i), np.int8)
    for s in range(0, len(i), chunk):
        a, b = i[s:s + chunk], j[s:s + chunk]
        both = p.price_mask[a].multiply(p.price_mask[b])
        n_shared = np.asarray(both.sum(axis=1)).ravel()
        d = p.price_keys[a].multiply(both) - p.price_keys[b].multiply(both)
        d = abs(d)
        tot = np.asarray(d.sum(axis=1)).ravel()
        with np.errstate(invalid="ignore", divide="ignore"):
            diff[s:s + chunk] = np.where(n_shared > 0, tot / np.maximum(n_shared, 1), np.nan)
    lev = np.where(np.isnan(diff), 0, 4 - np.digitize(np.nan_to_num(diff, nan=9.0),
                                                      [0.1, 0.25, 0.5])).astype(np.int8)
    return diff, lev


def _timing(p: Profiles, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # activity proper (joined, feedback) where known: every account of a page capture or
    # a seized dump "ends" on the capture date, which says nothing about the vendor
    start, end = p.start, p.end
    if p.active_start is not None and p.active_end is not None:
        start = np.where(np.isfinite(p.active_start), p.active_start, p.start)
        end = np.where(np.isfinite(p.active_end), p.active_end, p.end)
    gap = np.maximum(start[i], start[j]) - np.minimum(end[i], end[j])
    known = ~np.isnan(gap)
    g = np.nan_to_num(gap, nan=0.0)
    lev = np.select([~known, g < -30, g < 90, g < 365], [0, 4, 3, 2], default=1)
    return gap.astype(np.float32), lev.astype(np.int8)


def compare(p: Profiles, i: np.ndarray, j: np.ndarray,
            signals: tuple[str, ...] | None = None) -> PairFeatures:
    """Compare accounts ``i[k]`` and ``j[k]`` on every (or the named) signal."""
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    use = set(signals or SIGNALS)
    raw: dict[str, np.ndarray] = {}
    lev: dict[str, np.ndarray] = {}
    for g in IDENTIFIER_SIGNALS:
        if g in use:
            raw[g], lev[g] = _ident(p, g, i, j)
    if "contact" in use:
        # an account's own claim of the other's shop is as strong as a shared contact,
        # never a "different contacts": a claim naming no one here says nothing
        raw[CLAIMED] = claim_agrees(p, i, j)
        lev["contact"][raw[CLAIMED] > 0] = 2
    tie_by = tuple(g for g in IDENTIFIER_SIGNALS if g in use)
    if tie_by:
        group = p.derive(("identifier groups", tie_by), lambda: identifier_groups(p, tie_by))
        raw[TIED] = tied_through_others(group, i, j, [lev[g] for g in tie_by])
    if "handle" in use:
        raw["handle"], lev["handle"], raw["handle_holders"] = _handle(p, i, j)
    texts = p.has_style[i] & p.has_style[j]  # free text on both sides
    for name, mat, ev in (("style", p.style, p.style_evidence),
                          ("phrasing", p.phrasing, p.phrasing_evidence),
                          ("rare_phrases", p.rare_phrases, p.rare_evidence)):
        if name in use and mat is not None and ev is not None:
            raw[name] = ev.ratio(mat, i, j)
            lev[name] = _binned(raw[name], texts, _BINS[name])
    for name, mat, has in (("products", p.products, p.has_products),
                           ("feedback", p.feedback, p.has_feedback)):
        if name in use:
            raw[name] = row_cosines(mat, i, j)
            lev[name] = _binned(raw[name], has[i] & has[j], _BINS[name])
    if "capitals" in use and p.capitals is not None:
        # 1 - total variation distance between the two word-shape distributions
        raw["capitals"] = (1.0 - 0.5 * np.abs(p.capitals[i] - p.capitals[j]).sum(axis=1)
                           ).astype(np.float32)
        lev["capitals"] = _binned(raw["capitals"], texts, _BINS["capitals"])
    if "symbols" in use and p.symbols is not None:
        raw["symbols"] = row_cosines(p.symbols, i, j)
        lev["symbols"] = _binned(raw["symbols"], texts, _BINS["symbols"])
    if "price" in use:
        raw["price"], lev["price"] = _price(p, i, j)
    if "ships_from" in use:
        oi, oj = p.origin[i], p.origin[j]
        raw["ships_from"] = (oi == oj).astype(np.float32)
        # as a rare surname says more than "Smith", a shared origin says more the fewer
        # accounts ship from it (frequency-based agreement)
        share = p.origin_share[i] if p.origin_share is not None else np.ones(len(i))
        same_lev = 4 - np.digitize(np.nan_to_num(share, nan=1.0), [0.05, 0.2])
        # a country inside the region the other names ("Austria", "EU") is no evidence
        inside = np.zeros(len(i), dtype=bool)
        if p.origin_region is not None:
            ri, rj = p.origin_region[i], p.origin_region[j]
            inside = ((ri >= 0) & (ri == oj)) | ((rj >= 0) & (rj == oi))
        lev["ships_from"] = np.where((oi < 0) | (oj < 0) | inside, 0,
                                     np.where(oi == oj, same_lev, 1)).astype(np.int8)
    if "ships_to" in use:
        inter = row_cosines(p.dest, i, j)
        cnt = np.diff(p.dest.indptr)
        union = cnt[i] + cnt[j] - inter
        jac = np.where(union > 0, inter / np.maximum(union, 1), 0).astype(np.float32)
        raw["ships_to"] = jac
        # known on both sides: an account whose pages never list destinations has not
        # disagreed with one that ships to the USA
        lev["ships_to"] = _binned(jac, (cnt[i] > 0) & (cnt[j] > 0), _BINS["ships_to"])
    if "timing" in use:
        raw["timing"], lev["timing"] = _timing(p, i, j)
    if "migration" in use:
        gap = migration_successor(p, i, j)
        raw["migration"] = gap.astype(np.float32)
        best = mutual_best_successors(p)
        n = max(len(p), 1)
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        mutual = np.isin(lo * n + hi, best[:, 0] * n + best[:, 1])
        lev["migration"] = (np.isfinite(gap).astype(np.int8)
                            + (np.isfinite(gap) & mutual).astype(np.int8))
    if "market" in use:
        same = p.market_code[i] == p.market_code[j]
        raw["market"] = same.astype(np.float32)
        lev["market"] = same.astype(np.int8)
    return PairFeatures(i, j, raw, lev)
