"""Fast, vectorised text profiles: hashed character n-grams and word shingles, TF-IDF,
row-wise cosines.

scikit-learn's analyzers build n-grams in Python, which costs minutes at 100,000
accounts; here the n-grams of a whole batch of texts are hashed at once with numpy
over the UTF-8 bytes, so building the profiles is a few array passes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["SharedEvidence", "evidence_profile", "hashed_ngrams", "hashed_shingles",
           "language_groups", "market_dialects", "product_vocabulary", "row_cosines",
           "symbol_runs", "tfidf", "token_vocabulary", "top_k_rows", "word_document_counts",
           "word_shapes"]

_MULT = np.uint64(0x100000001B3)


def _hashed_matrix(texts: list[str], n_features: int, chunk: int, binary: bool,
                   grams: Callable[[list[str]], tuple[list[np.ndarray], list[np.ndarray]]]
                   ) -> sp.csr_matrix:
    """CSR counts (or presence) of the hashed features ``grams`` finds in each chunk of
    texts: ``grams(part)`` returns (document, feature hash) arrays per n."""
    mats = []
    for s in range(0, len(texts), chunk):
        part = texts[s:s + chunk]
        rows, hashes = grams(part)
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = (np.concatenate(hashes) % np.uint64(n_features)).astype(np.int64) if hashes \
            else np.zeros(0, np.int64)
        m = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(part), n_features))
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        mats.append(m)
    if not mats:
        return sp.csr_matrix(np.zeros((0, n_features), dtype=np.float32))
    return sp.csr_matrix(sp.vstack(mats, format="csr"), dtype=np.float32)


def _gram_hashes(seq: np.ndarray, at: np.ndarray, n: int, shift: int) -> np.ndarray:
    """Hash of the ``n`` items of ``seq`` (bytes or token hashes) starting at each
    position in ``at`` (FNV-style, seeded by ``n``, folded by ``shift`` bits)."""
    g = np.full(len(at), np.uint64(n) * np.uint64(0x9E3779B1), dtype=np.uint64)
    for t in range(n):
        g = (g ^ seq[at + t].astype(np.uint64, copy=False)) * _MULT
    g ^= g >> np.uint64(shift)
    return g


def hashed_ngrams(texts: list[str], ns: tuple[int, ...] = (3, 4), n_features: int = 2**20,
                  lowercase: bool = False, chunk: int = 5000) -> sp.csr_matrix:
    """Counts of hashed byte n-grams (n in ``ns``) per text, as a CSR matrix."""
    def grams(part: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        enc = [(t.casefold() if lowercase else t).encode("utf-8", "replace") for t in part]
        lens = np.fromiter((len(e) for e in enc), dtype=np.int64, count=len(enc))
        buf = np.frombuffer(b"".join(enc), dtype=np.uint8).astype(np.uint64)
        total = int(lens.sum())
        starts = np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64)
        doc = np.repeat(np.arange(len(part), dtype=np.int64), lens)
        pos = np.arange(total, dtype=np.int64) - starts[doc] if total else np.zeros(0, np.int64)
        rows, hashes = [], []
        for n in ns:
            ok = np.nonzero(pos <= lens[doc] - n)[0] if total else np.zeros(0, np.int64)
            rows.append(doc[ok])
            hashes.append(_gram_hashes(buf, ok, n, 29))
        return rows, hashes

    return _hashed_matrix(texts, n_features, chunk, False, grams)


def _word_bytes() -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    for c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
        table[c] = True
    table[128:] = True  # UTF-8 multi-byte letters (and emoji) belong to words
    return table


_IS_WORD = _word_bytes()
_IS_SPACE = np.zeros(256, dtype=bool)
_IS_SPACE[list(b" \t\r\n\x0b\x0c")] = True
_IS_DIGIT = np.zeros(256, dtype=bool)
_IS_DIGIT[list(b"0123456789")] = True
_DIGITS_HASH = np.uint64(0x5DEECE66D)
_MASK_HASH = np.uint64(0x2545F4914F6CDD1D)
_IS_ASCII_LETTER = np.zeros(256, dtype=bool)
_IS_ASCII_LETTER[list(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")] = True


def _token_hashes(part: list[str], max_len: int,
                  digits: str = "keep") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(document, hash, first byte) of every token of ``part``, in text order.

    A token is a maximal run of letters/digits (non-ASCII bytes count as letters) or a
    single punctuation character, case-folded and truncated to ``max_len`` bytes.
    ``digits``: ``keep`` leaves digits inside words ("24h" is one token); ``split``
    makes every digit run a token of its own ("24", "h"); ``fold`` also hashes every
    digit run alike (prices and quantities change from listing to listing, where they
    stand in the sentence does not).
    """
    pw = np.ones(max_len, dtype=np.uint64)
    for k in range(1, max_len):
        pw[k:k + 1] = pw[k - 1:k] * _MULT  # array ops wrap modulo 2**64 silently
    enc = [t.casefold().encode("utf-8", "replace") + b" " for t in part]
    lens = np.fromiter((len(e) for e in enc), dtype=np.int64, count=len(enc))
    raw = np.frombuffer(b"".join(enc), dtype=np.uint8)
    doc = np.repeat(np.arange(len(part), dtype=np.int64), lens)
    word = _IS_WORD[raw]
    punct = ~word & ~_IS_SPACE[raw]
    prev_word = np.concatenate(([False], word[:-1]))
    new_doc = np.concatenate(([True], doc[1:] != doc[:-1]))
    start = (word & (~prev_word | new_doc)) | punct
    if digits != "keep":  # "14:00", "x2", "24h": digits and letters become separate tokens
        digit = _IS_DIGIT[raw]
        prev_digit = np.concatenate(([False], digit[:-1]))
        start |= word & prev_word & (digit != prev_digit)
    in_tok = word | punct
    tok = np.cumsum(start) - 1
    pos = np.nonzero(in_tok)[0]
    t_id = tok[pos]
    first = np.nonzero(start)[0]
    h = np.zeros(len(first), dtype=np.uint64)
    if len(t_id):
        off = pos - first[t_id]
        keep = off < max_len
        vals = (raw[pos[keep]].astype(np.uint64) + np.uint64(1)) * pw[off[keep]]
        tk = t_id[keep]
        bounds = np.nonzero(np.concatenate(([True], tk[1:] != tk[:-1])))[0]
        h[tk[bounds]] = np.add.reduceat(vals, bounds)
        if digits == "fold":  # a token is all digits or has none
            h[_IS_DIGIT[raw[first]]] = _DIGITS_HASH
    h ^= h >> np.uint64(29)
    h *= _MULT
    h ^= h >> np.uint64(32)
    return doc[first], h, raw[first]


def token_vocabulary(texts: list[str], min_docs: int = 3, max_len: int = 24,
                     chunk: int = 5000) -> np.ndarray:
    """Sorted hashes of the words (tokens starting with an ASCII letter) that occur in
    at least ``min_docs`` of ``texts``, hashed as :func:`hashed_shingles` hashes them."""
    vals, counts = word_document_counts(texts, max_len, chunk)
    return vals[counts >= min_docs]


def word_document_counts(texts: list[str], max_len: int = 24,
                         chunk: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    """(sorted word hashes, number of ``texts`` holding each): words are tokens starting
    with an ASCII letter, hashed as :func:`hashed_shingles` hashes them."""
    found = []
    for s in range(0, len(texts), chunk):
        doc, h, lead = _token_hashes(texts[s:s + chunk], max_len, "fold")
        word = _IS_ASCII_LETTER[lead]
        doc, h = doc[word], h[word]
        # each (text, word) once: sorted by word, then text (a lexsort of the two keys
        # is several times quicker than np.unique over (text, word) records)
        order = np.lexsort((doc, h))
        h, doc = h[order], doc[order]
        first = np.ones(len(h), dtype=bool)
        first[1:] = (h[1:] != h[:-1]) | (doc[1:] != doc[:-1])
        found.append(h[first])
    if not found:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    return np.unique(np.concatenate(found), return_counts=True)


def product_vocabulary(titles: list[str], prose: list[str], min_docs: int = 3,
                       max_prose_ratio: float = 2.0) -> np.ndarray:
    """Sorted hashes of the *product words*: words in ``titles`` of at least ``min_docs``
    rows that the free text (``prose``) of at most ``max_prose_ratio`` times as many
    rows uses.

    A drug name is written where the drug is offered, in titles and in the sentence of
    the description that names it. "pure", "quality", "stealth" or "best" are in
    titles too ("Pure Colombian cocaine"), but vendors use them everywhere else in
    far more accounts: they are the vendor's language, the very habits the phrasing
    signals read, and masking them would erase a vendor's pet phrases.
    """
    t_vals, t_counts = word_document_counts(titles)
    keep = t_counts >= min_docs
    t_vals, t_counts = t_vals[keep], t_counts[keep]
    p_vals, p_counts = word_document_counts(prose)
    _, in_t, in_p = np.intersect1d(t_vals, p_vals, assume_unique=True, return_indices=True)
    prose_docs = np.zeros(len(t_vals), dtype=np.int64)
    prose_docs[in_t] = p_counts[in_p]
    return t_vals[prose_docs <= max_prose_ratio * t_counts]


def hashed_shingles(texts: list[str], ns: tuple[int, ...] = (1, 2, 3),
                    digits: str = "fold", n_features: int = 2**21, max_len: int = 24,
                    chunk: int = 5000, mask: np.ndarray | None = None) -> sp.csr_matrix:
    """Binary presence of hashed word n-grams (shingles) per text.

    Presence, not counts: a vendor pastes the same boilerplate into every listing, and
    counting it would let the number of listings, not the wording, decide the profile.
    ``digits`` as in :func:`_token_hashes` (``fold`` or ``split``). Tokens whose hash is
    in ``mask`` (a sorted array, e.g. from :func:`token_vocabulary`) all become one
    placeholder token: the shingles keep the words around them ("Selling # at the best
    prices") and lose what they are about (text distortion, Stamatatos 2017).
    """
    def grams(part: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        doc, h, _ = _token_hashes(part, max_len, digits)
        if mask is not None and len(mask) and len(h):
            h[np.isin(h, mask)] = _MASK_HASH
        rows, hashes = [], []
        for n in ns:
            if len(h) < n:
                continue
            k = np.nonzero(doc[:len(h) - n + 1] == doc[n - 1:])[0]
            rows.append(doc[k])
            hashes.append(_gram_hashes(h, k, n, 31))
        return rows, hashes

    return _hashed_matrix(texts, n_features, chunk, True, grams)


def word_shapes(texts: list[str], chunk: int = 5000) -> np.ndarray:
    """Share of each text's words (ASCII letter runs of two or more) written ALL CAPS,
    lower case, Capitalised and in any other mix: an ``(n, 4)`` float32 array whose
    rows sum to 1 (0 for a text without words). Capitalisation is a habit
    (Writeprints' character features), and the shingles are case-folded."""
    out = np.zeros((len(texts), 4), dtype=np.float32)
    for s in range(0, len(texts), chunk):
        out[s:s + chunk] = _word_shapes(texts[s:s + chunk])
    return out


def _word_shapes(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), 4), dtype=np.float32)
    if not texts:
        return out
    enc = [t.encode("utf-8", "replace") + b" " for t in texts]
    lens = np.fromiter((len(e) for e in enc), dtype=np.int64, count=len(enc))
    raw = np.frombuffer(b"".join(enc), dtype=np.uint8)
    letter = _IS_ASCII_LETTER[raw]
    upper = (raw >= 65) & (raw <= 90)
    start = letter.copy()
    start[1:] &= ~letter[:-1]  # every text ends in a space: runs never cross texts
    first = np.flatnonzero(start)
    if not len(first):
        return out
    end = np.flatnonzero(letter & ~np.concatenate((letter[1:], [False]))) + 1
    length = end - first
    cum_up = np.concatenate(([0], np.cumsum(upper, dtype=np.int64)))
    n_up = cum_up[end] - cum_up[first]
    shape = np.select([n_up == length, n_up == 0, (n_up == 1) & upper[first]], [0, 1, 2], 3)
    ok = length >= 2
    doc = np.searchsorted(np.cumsum(lens), first[ok], side="right")
    cnt = np.bincount(doc * 4 + shape[ok], minlength=4 * len(texts))
    cnt = cnt.reshape(len(texts), 4).astype(np.float32)
    tot = cnt.sum(axis=1, keepdims=True)
    np.divide(cnt, tot, out=out, where=tot > 0)
    return out


def _is_symbol(cp: np.ndarray) -> np.ndarray:
    """Which code points are neither letters, digits, marks nor white space."""
    sym = np.zeros(len(cp), dtype=bool)
    ascii_ = cp < 128
    a = cp[ascii_].astype(np.uint8)
    sym[ascii_] = ~(_IS_WORD[a] | _IS_SPACE[a])
    other = np.nonzero(~ascii_)[0]
    if len(other):
        uniq, inv = np.unique(cp[other], return_inverse=True)
        is_sym = np.fromiter((unicodedata.category(chr(int(c)))[0] in "PSC" for c in uniq),
                             dtype=bool, count=len(uniq))
        sym[other] = is_sym[inv]
    return sym


def symbol_runs(texts: list[str], n_features: int = 2**18,
                chunk: int = 5000) -> sp.csr_matrix:
    """Binary presence of each text's punctuation, symbol and emoji habits: runs of one
    symbol (``!``, ``!!``, ``!!!`` and longer alike) and pairs of different symbols
    written together (``:)``, ``!?``, ``*~``)."""
    def grams(part: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        cps = [np.frombuffer(t.encode("utf-32-le", "replace"), dtype=np.uint32) for t in part]
        lens = np.fromiter((len(c) + 1 for c in cps), dtype=np.int64, count=len(cps))
        cp = np.concatenate([np.append(c, np.uint32(32)) for c in cps]).astype(np.uint64) \
            if cps else np.zeros(0, np.uint64)
        doc = np.repeat(np.arange(len(part), dtype=np.int64), lens)
        sym = _is_symbol(cp)
        same_prev = np.concatenate(([False], (cp[1:] == cp[:-1]) & sym[1:] & sym[:-1]))
        run_start = sym & ~same_prev
        starts = np.nonzero(run_start)[0]
        if not len(starts):
            return [], []
        run_id = np.cumsum(run_start) - 1
        run_len = np.bincount(run_id[sym], minlength=len(starts))
        code = cp[starts]
        h_run = (code * np.uint64(4) + np.minimum(run_len, 3).astype(np.uint64)) * _MULT
        # two different symbols written together: the end of one run touches the next
        ends = starts + run_len
        touch = np.nonzero(ends[:-1] == starts[1:])[0]
        h_pair = ((code[touch] * _MULT) ^ code[touch + 1]) * _MULT + np.uint64(7)
        return [doc[starts], doc[starts[touch]]], [h_run ^ (h_run >> np.uint64(29)),
                                                    h_pair ^ (h_pair >> np.uint64(29))]

    return _hashed_matrix(texts, n_features, chunk, True, grams)


def _top_k_positions(indptr: np.ndarray, data: np.ndarray, k: int,
                     rows_per_chunk: int = 4096) -> np.ndarray | None:
    """Positions (sorted) of the ``k`` largest entries of every CSR row, or ``None``
    when no row has more than ``k``. Ties keep the earlier entry. Rows are taken a
    chunk at a time, so the sort's scratch memory does not grow with the matrix."""
    counts = np.diff(indptr)
    if counts.size == 0 or counts.max() <= k:
        return None
    out: list[np.ndarray] = []
    for r0 in range(0, len(counts), rows_per_chunk):
        r1 = min(r0 + rows_per_chunk, len(counts))
        a, b = int(indptr[r0]), int(indptr[r1])
        c = counts[r0:r1]
        if c.max(initial=0) <= k:
            out.append(np.arange(a, b, dtype=np.int64))
            continue
        row = np.repeat(np.arange(r1 - r0, dtype=np.int32), c)
        order = np.lexsort((-data[a:b], row))
        # rows are in order, so the sorted entries of row r sit at its own positions:
        # an entry's rank in its row is its place in the sort less the row's start
        rank = np.arange(b - a) - (indptr[r0:r1] - a)[row]
        out.append(np.sort(order[rank < k]) + a)
    return np.concatenate(out)


def _csr_subset(m: sp.csr_matrix, keep: np.ndarray, data: np.ndarray | None = None
                ) -> sp.csr_matrix:
    """The entries of ``m`` at positions ``keep`` (sorted), row order preserved."""
    vals = (m.data if data is None else data)[keep]
    return sp.csr_matrix((vals, m.indices[keep], _kept_indptr(m, keep)), shape=m.shape)


def _kept_indptr(m: sp.csr_matrix, keep: np.ndarray) -> np.ndarray:
    """The CSR row pointer of ``m`` restricted to the entry positions ``keep``
    (sorted): how many kept positions lie before each row's start."""
    return np.searchsorted(keep, m.indptr).astype(np.int64)


def top_k_rows(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of every row (vectorised)."""
    m = sp.csr_matrix(m)
    keep = _top_k_positions(m.indptr, m.data, k)
    return m if keep is None else _csr_subset(m, keep)


def tfidf(counts: sp.csr_matrix, top_k: int | None = None,
          min_df: int = 1) -> sp.csr_matrix:
    """Sublinear TF-IDF with L2-normalised rows, optionally pruned to ``top_k`` per row.

    ``min_df=2`` drops the features only one row has: they can match nothing, yet as
    the rarest they weigh most, fill the ``top_k`` and shrink every cosine.
    """
    m = sp.csr_matrix(counts, dtype=np.float32, copy=True)
    n = max(1, m.shape[0])
    df = np.bincount(m.indices, minlength=m.shape[1]).astype(np.float32)
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    m.data = (1.0 + np.log(m.data)) * idf[m.indices]
    if min_df > 1:
        m.data[df[m.indices] < min_df] = 0.0
        m.eliminate_zeros()
    if top_k:
        m = top_k_rows(m, top_k)
    return normalise_rows(m)


@dataclass
class SharedEvidence:
    """How much two rows of a presence profile share, against what chance would give.

    Every feature weighs ``w = min(log(N / df), log(cap))`` (a shingle a quarter of the
    accounts use is worth log 4; one that two accounts share is worth the cap, so the
    weights do not grow with the size of the workspace). Two accounts *share* the sum
    of the weights of their common features; *by chance* an account shares
    ``sum(w * df / N)`` of its features with a random account of average size. The
    ratio of the two is what a likelihood-ratio reader of two texts asks ("they share
    five times what two strangers share"), and, unlike a cosine, it grows with the
    amount of common text: twenty shared habits are more than two.
    """

    total: np.ndarray    # sum of w over each row's features
    chance: np.ndarray   # sum of w * df / N over each row's features
    size: np.ndarray     # features of each row over the mean (rows with features)

    def ratio(self, m: sp.csr_matrix, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """``(shared + 1) / (chance + 1)`` for the pairs ``(i[k], j[k])`` of ``m``
        (the L2-normalised rows of sqrt(w) :func:`evidence_profile` returns)."""
        shared = row_cosines(m, i, j) * np.sqrt(self.total[i] * self.total[j])
        chance = 0.5 * (self.chance[i] * self.size[j] + self.chance[j] * self.size[i])
        ratio: np.ndarray = ((shared + 1.0) / (chance + 1.0)).astype(np.float32)
        return ratio


# Function words of the languages vendors write in besides English: enough to tell
# which language a text is mostly in, no model needed.
_FUNCTION_WORDS = {
    "en": "the and you for with are is we our to of in it this your will not have be on",
    "de": "und ich die der das nicht ist wir sie mit für auf bitte euch ein eine zu den "
          "von bei auch",
    "nl": "het een en van ik je niet met voor op wij zijn dat bij ook naar jullie onze",
    "fr": "le la les et des un une pour vous nous est pas avec sur du je votre nos",
    "es": "el los las y que para con por es su nosotros una muy del al envío",
    "it": "il di che per non sono siamo della gli con una nostro spedizione",
}
_MIN_FUNCTION_WORDS = 5


def language_groups(shingles: sp.csr_matrix, digits: str = "split") -> np.ndarray:
    """A language code per row of a :func:`hashed_shingles` presence matrix that holds
    unigrams (0 = English or undecided, 1.. in the order of ``_FUNCTION_WORDS``): the
    language of which the text uses the most distinct function words, when that is at
    least five and more than English ones. Read off the shingles already built, so
    the texts are not tokenised again."""
    m = sp.csr_matrix(shingles)
    cols = []
    for words in _FUNCTION_WORDS.values():
        w = words.split()
        cols.append(np.unique(hashed_shingles(w, (1,), digits=digits,
                                              n_features=m.shape[1]).indices))
    counts = np.stack([np.asarray((m[:, c] > 0).sum(axis=1)).ravel() for c in cols], axis=1)
    best = counts.argmax(axis=1)
    ok = (counts.max(axis=1) >= _MIN_FUNCTION_WORDS) & (counts[:, 1:].max(axis=1)
                                                        > counts[:, 0])
    return np.where(ok, best, 0).astype(np.int64)


def market_dialects(shingles: sp.csr_matrix, market: np.ndarray,
                    min_similarity: float = 0.8, min_df: int = 5) -> np.ndarray:
    """A dialect code per row: markets whose vendors write alike share one.

    A market's profile is the share of its accounts using each shingle (of ``min_df``
    accounts or more); markets join while every pair in a group has profiles at least
    ``min_similarity`` alike (cosine; complete linkage). Markets of one family (the
    same community, the same generator) form one group and keep the workspace's
    frequencies; a market that writes differently gets its own, so that a phrase
    common there is not "rare" because the rest of the workspace does not use it.
    """
    m = sp.csr_matrix(shingles)
    market = np.asarray(market, dtype=np.int64)
    n_m = int(market.max()) + 1 if len(market) else 0
    if n_m <= 1:
        return np.zeros(len(market), dtype=np.int64)
    df = np.bincount(m.indices, minlength=m.shape[1])
    cols = np.flatnonzero(df >= min_df)
    sizes = np.bincount(market, minlength=n_m).astype(np.float64)
    pick = sp.csr_matrix((np.ones(len(market)), (market, np.arange(len(market)))),
                         shape=(n_m, len(market)))
    prof = sp.diags(1.0 / np.maximum(sizes, 1.0)) @ (pick @ (m[:, cols] > 0))
    prof = sp.csr_matrix(prof)
    norm = np.sqrt(np.asarray(prof.multiply(prof).sum(axis=1)).ravel())
    sim = (prof @ prof.T).toarray() / np.maximum(np.outer(norm, norm), 1e-12)
    groups = [[k] for k in range(n_m)]
    while True:
        best, pair = min_similarity, None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                link = min(sim[x, y] for x in groups[a] for y in groups[b])
                if link >= best:
                    best, pair = link, (a, b)
        if pair is None:
            break
        a, b = pair
        groups[a] += groups.pop(b)
    code = np.zeros(n_m, dtype=np.int64)
    for g, members in enumerate(sorted(groups, key=min)):
        code[members] = g
    dialect: np.ndarray = code[market]
    return dialect


def evidence_profile(presence: sp.csr_matrix, top_k: int | None = None,
                     cap: float = 100.0, groups: np.ndarray | None = None,
                     prior: float = 50.0, max_share: float | None = None
                     ) -> tuple[sp.csr_matrix, SharedEvidence]:
    """Rows of sqrt(w) over the features at least two rows have (a feature of one row
    can match nothing), pruned to the ``top_k`` heaviest per row and L2-normalised, so
    :func:`row_cosines` gives the weighted cosine; and the :class:`SharedEvidence`
    that turns the same dot products into shared-versus-chance ratios.

    ``groups`` (e.g. :func:`language_groups`): a feature's frequency is taken among
    the rows of the row's own group, shrunk towards the overall frequency by ``prior``
    pseudo-rows. Two German texts share "ich" and "bitte" because they are German;
    weighed by their rarity in a mostly English workspace, every pair of German
    writers would look like one person.

    ``max_share``: only the features fewer than this share of all rows hold (the rare
    ones: a pet phrase, a habitual misspelling, a template with its own carrier),
    so that their evidence is not drowned by the common ones.
    """
    m = sp.csr_matrix(presence, dtype=np.float32)
    m.sort_indices()  # in place; the hashed matrices are built sorted already
    n = max(1, m.shape[0])
    df = np.bincount(m.indices, minlength=m.shape[1]).astype(np.float64)
    freq = (df / n)[m.indices]
    if groups is not None and len(np.unique(groups)) > 1:
        _group_frequencies(m, np.asarray(groups, dtype=np.int64), freq, prior)
    # Arrays over every entry are let go as soon as they are used (a text profile of
    # 100,000 accounts has some 25 million entries: 200 MB per float64 array)
    held = df[m.indices]
    ok = held >= 2
    if max_share is not None:
        ok &= held < max_share * n
    del held, df
    w = np.maximum(freq, 1.0 / n)
    np.log(w, out=w)
    np.negative(w, out=w)
    np.minimum(w, np.log(cap), out=w)
    ok &= w > 0
    keep = np.flatnonzero(ok)
    del ok
    freq = freq[keep]
    w = w[keep]
    np.sqrt(w, out=w)
    root = w.astype(np.float32)
    del w
    if top_k:
        sub = _top_k_positions(_kept_indptr(m, keep), root, top_k)
        if sub is not None:  # one at a time: each old array goes before the next is cut
            keep = keep[sub]
            root = root[sub]
            freq = freq[sub]
            del sub
    m = sp.csr_matrix((root, m.indices[keep], _kept_indptr(m, keep)), shape=m.shape)
    del keep, root
    total = np.asarray(m.multiply(m).sum(axis=1), dtype=np.float64).ravel()
    p = m.data.astype(np.float64)
    p **= 2
    p *= freq
    del freq
    chance = np.asarray(sp.csr_matrix((p, m.indices, m.indptr), shape=m.shape).sum(axis=1),
                        dtype=np.float64).ravel()
    del p
    size = np.diff(m.indptr).astype(np.float64)
    mean = size[size > 0].mean() if (size > 0).any() else 1.0
    return normalise_rows(m), SharedEvidence(total, chance, size / mean)


def _group_frequencies(m: sp.csr_matrix, groups: np.ndarray, freq: np.ndarray,
                       prior: float) -> None:
    """Each entry's frequency among the rows of its row's group, shrunk towards the
    overall frequency ``freq`` by ``prior`` pseudo-rows, in place: a group at a time,
    so no array of (group, feature) keys over every entry is sorted."""
    n_g = np.bincount(groups).astype(np.float64)
    lengths = np.diff(m.indptr)
    for g in np.unique(groups).tolist():
        at = np.repeat(groups == g, lengths)
        idx = m.indices[at]
        cnt = np.bincount(idx, minlength=m.shape[1]).astype(np.float64)
        f = freq[at]
        f *= prior
        f += cnt[idx]
        f /= n_g[g] + prior
        freq[at] = f


def normalise_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    """L2-normalise every row (empty rows stay empty)."""
    m = sp.csr_matrix(m, dtype=np.float32)
    sq = np.asarray(m.multiply(m).sum(axis=1)).ravel()
    inv = np.zeros_like(sq)
    nz = sq > 0
    inv[nz] = 1.0 / np.sqrt(sq[nz])
    out = sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ m, dtype=np.float32)
    # sorted column indices let scipy merge two rows instead of scattering them: the
    # pair cosines (`row_cosines`) over millions of candidate pairs run 1.5-2.5x faster
    out.sort_indices()
    return out


def row_cosines(m: sp.csr_matrix, i: np.ndarray, j: np.ndarray,
                chunk: int = 100_000) -> np.ndarray:
    """``m[i[k]] . m[j[k]]`` for every k (rows assumed L2-normalised)."""
    out = np.zeros(len(i), dtype=np.float32)
    for s in range(0, len(i), chunk):
        a = m[i[s:s + chunk]]
        b = m[j[s:s + chunk]]
        out[s:s + chunk] = np.asarray(a.multiply(b).sum(axis=1)).ravel()
    return out
