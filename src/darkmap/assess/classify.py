"""Drug class and substance of a listing, from its title, description and category.

A transparent weighted-lexicon classifier: every term found adds its weight to the
substance (or ``non_drug``) it points to; the title counts fully, the category path by
its own table and the description at a third (descriptions are long and often list
other products). Words right after "free", "bonus", "similar to", "stronger than"...
count a quarter (a free Xanax with an Adderall order does not make it a Xanax
listing). The class with the highest total wins against ``non_drug``; the substance
is the best within that class. A "mix"/"combo"/"raffle" listing naming two or more
substances becomes ``mixed`` with the class of its most harmful part.

Each decision keeps the words that raised it (``Classification.words``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from darkmap.assess.flags import named_fentanyl
from darkmap.assess.lexicon import Lexicon, Match, fold_lookalikes, load_lexicon, normalise
from darkmap.assess.taxonomy import SUBSTANCE_CLASS, most_harmful_class

__all__ = ["Classification", "classify", "classify_words"]

TITLE_WEIGHT = 1.0
DESCRIPTION_WEIGHT = 0.33
DISCOUNT = 0.25
_DISCOUNT_WORDS = frozenset({
    "free", "bonus", "gift", "plus", "similar", "cousin", "alternative", "equivalent",
    "than", "replacement", "instead", "without", "vs", "versus", "no", "not", "non",
    "gratis", "extra", "analogue", "analog"})
_MIX_WORDS = frozenset({
    "mix", "mixed", "combo", "combination", "raffle", "sampler", "variety", "assorted",
    "assortment", "mixpack", "starter"})


@dataclass(slots=True)
class Classification:
    """The decision for one listing, with the words that support it."""

    drug_class: str
    substance: str
    confidence: float
    words: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)


# words after a term that say the item is not it ("Ethylphenidate - Ritalin Analogue")
_AFTER_DISCOUNT = frozenset({"analogue", "analog", "alternative", "replacement", "substitute",
                             "equivalent"})
# a negation cancels only the term right after it ("no seed weed" is seedless weed)
_NEGATIONS = frozenset({"no", "not", "non", "without"})

_NOT_A_DISCOUNT_AFTER_FREE = frozenset({
    "sample", "samples", "shipping", "delivery", "postage", "tracking", "express",
    "reship", "reships", "priority", "domestic", "worldwide", "fast", "ship"})


_MODIFIERS = _DISCOUNT_WORDS | _NEGATIONS | _AFTER_DISCOUNT | {"free"}

# "bar"/"bars" alone say "Xanax bar" only without a cannabis word beside them, without a
# strength no alprazolam tablet has ("Korova 5150 Bar 500mg", "Golden Bars 200MG") and
# with a pill's context (_BAR_CONTEXT)
_BAR_WORDS = frozenset({"bar", "bars"})
_EDIBLE_CONTEXT = frozenset({"thc", "cbd", "chocolate", "choc", "edible", "edibles", "infused",
                             "cannabis", "marijuana", "canna", "weed"})
# what makes a bare "bar" a Xanax bar: a count of bars, a tablet strength, a pill word or
# a bar colour ("400 bars", "bars x 100", "2mg bars", "bars - 20 tabs", "yellow bars")
_BAR_CONTEXT = re.compile(
    r"(?<!\w)(?:\d+\s?x?\s?bars?|bars?\s(?:x\s?)?\d+|\d+\s?mgs?|pills?|tabs?|tablets?|"
    r"benzos?|pfizer|(?:yellow|green|white|blue|peach|pink|purple)\sbars?)(?!\w)")
# "Rick and Morty 10 x 120ug tabs": a drug dosed in micrograms with no name is an LSD
# blotter (fentanyl, NBOMes, clenbuterol, T3 are named when sold)
_MICROGRAM_DOSE = re.compile(r"(?<![\w.])\d{2,4}\s?(?:ug|mcg|\u03bcg)(?!\w)")
_BIG_DOSE = re.compile(r"(?<![\d.])(\d{2,5})\s?(?:mg|mgs|milligrams?)(?![a-z])")
# "seeds" says the form, not the plant: with another plant named ("Cebil/Yopo Seeds",
# "seeds tobacco") the seeds are that plant's
_SEED_FORM_WORDS = frozenset({"seed", "seeds", "samen", "semillas", "semi"})
# "cart", "vape cartridge" say the form, not the drug: with another drug named and no
# cannabis word ("1ml Opium Vape Cart", "DMT vape cart") the cartridge is that drug's
_CART_FORM_WORDS = frozenset({
    "cart", "carts", "cartridge", "cartridges", "vape cart", "vapecart", "vapecarts",
    "vapecartridge", "vapecartridges", "vape pen"})
# "Cinema 4D + Crack", "Photoshop with crack": a software crack (the drug is "crack
# cocaine", "crack rocks", or named beside another drug)
_SOFTWARE_CRACK = re.compile(r"(?:\+|&|\b(?:with|incl|including|plus))\W{0,3}crack(?:ed)?\b|"
                             r"\bcrack\W{0,3}(?:\+|&|and)?\W{0,3}"
                             r"(?:keygen|serial|patch|activator|licen[cs]e|included)\b")


def _discounted(words: list[str], matches: list[Match],
                raw: str = "") -> list[tuple[Match, float]]:
    """Each match with its weight factor; ``raw`` is the casefolded text before
    normalisation (for "X-free")."""
    if _MODIFIERS.isdisjoint(words):  # most titles: no word changes a term's weight
        return [(m, 0.1 if m.target == "non_drug" and m.position >= 0
                 and "tested" in words[m.position + 1:m.position + 4] else 1.0)
                for m in matches]
    out = []
    for m in matches:
        factor = 1.0
        for j in range(max(0, m.position - 3), max(0, m.position)):
            w = words[j]
            if w in _NEGATIONS:
                if j == m.position - 1:
                    factor = 0.0
                    break
                continue
            if w in _DISCOUNT_WORDS and not (
                    w == "free" and j + 1 < len(words)
                    and words[j + 1] in _NOT_A_DISCOUNT_AFTER_FREE):
                factor = DISCOUNT
                break
        end = m.position + m.term.count(" ") + 1
        if factor == 1.0 and 0 <= m.position and end < len(words) \
                and words[end] in _AFTER_DISCOUNT:
            factor = DISCOUNT
        if raw and 0 <= m.position and end < len(words) and words[end] == "free" and (
                f"{words[end - 1]}-free" in raw or f"{words[end - 1]}free" in raw):
            # "Fent-free Heroin", "fentanyl-free": the product is without it (written
            # joined; "HASH, free uk shipping" and "Meph--Free Postage" are not)
            factor = 0.0
        if m.target == "non_drug" and m.position >= 0 \
                and "tested" in words[m.position + 1:m.position + 4]:
            factor = 0.1   # "Marquis/Mecke tested MDMA": a tested drug, not a test kit
        out.append((m, factor))
    return out


# the test kits' words: the kit is the product only when no fentanyl is named beside it
_TEST_KIT_TERMS = frozenset({
    "test kit", "test kits", "test strip", "test strips", "testing kit", "testing strips",
    "reagent", "reagents", "reagent kit", "drug test", "fentanyl test"})


def _kit_beside_fentanyl(hits: list[tuple[Match, float]],
                         title: str) -> list[tuple[Match, float]]:
    """Test-kit words count a quarter when the title also names fentanyl outside every
    test or negation phrase ("Fentanyl 1g + fentanyl test strips included")."""
    if not any(m.term in _TEST_KIT_TERMS for m, _ in hits) or not named_fentanyl(title):
        return hits
    return [(m, f * DISCOUNT if m.term in _TEST_KIT_TERMS else f) for m, f in hits]


def classify_words(title_words: list[str], title_norm: str, desc_norm: str,
                   category: list[str], lex: Lexicon,
                   title_raw: str | None = None) -> Classification:
    """Classify already-normalised text (the fast path used by :func:`classify`);
    ``title_raw`` (the title before normalisation) lets "Product + Crack" be read, and a
    title whose normalisation folded look-alike letters, invisible characters or spaced-out
    letters says so in its words ("(look-alike spelling: ...)"): the trick is a signal."""
    out = _classify_words(title_words, title_norm, desc_norm, category, lex, title_raw)
    if title_raw:
        done = fold_lookalikes(title_raw[:2000].casefold())[1]
        if done:
            out.words.append(f"(look-alike spelling: {', '.join(done)})")
    return out


def _classify_words(title_words: list[str], title_norm: str, desc_norm: str,
                    category: list[str], lex: Lexicon,
                    title_raw: str | None = None) -> Classification:
    """:func:`classify_words` without the note on folded spellings."""
    scores: dict[str, float] = defaultdict(float)
    why: dict[str, list[str]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()

    def add(m: Match, w: float, field_name: str) -> None:
        if m.target == "@none" or (field_name, m.term) in seen:
            return
        seen.add((field_name, m.term))
        scores[m.target] += m.weight * w
        why[m.target].append(m.term if field_name == "title" else f"{field_name}:{m.term}")

    title_hits = lex.find(title_words) + lex.find_stems(title_norm)
    raw = title_raw[:2000].casefold() if title_raw and "free" in title_words else ""
    weighed = _kit_beside_fentanyl(_discounted(title_words, title_hits, raw),
                                   (title_raw or title_norm)[:2000].casefold())
    for m, f in weighed:
        add(m, TITLE_WEIGHT * f, "title")
    for m in lex.category(category):
        add(m, 1.0, "category")
    if desc_norm:
        dw = desc_norm.split(" ")
        for m, f in _discounted(dw, lex.find(dw) + lex.find_stems(desc_norm)):
            add(m, DESCRIPTION_WEIGHT * f, "description")

    _reassign_form_words(scores, why, title_norm)
    if scores.get("crack", 0.0) > 0 and title_raw \
            and _SOFTWARE_CRACK.search(title_raw[:500].casefold()) \
            and not any(v > 0 for k, v in scores.items()
                        if k not in ("crack", "non_drug", "@drug", "@none")):
        # "Cinema 4D + Crack": a software crack, no drug named beside it
        scores["non_drug"] += scores.pop("crack") + 1.0
        why["non_drug"].append("(crack joined to a product: software crack)")
    drug_prior = scores.pop("@drug", 0.0)
    named_non = scores.pop("non_drug", 0.0)
    non = max(0.0, named_non - drug_prior)
    by_class: dict[str, float] = defaultdict(float)
    for sub, v in scores.items():
        by_class[SUBSTANCE_CLASS.get(sub, "non_drug")] += v
    if not by_class or max(by_class.values()) <= 0:
        # no substance named: an item word (grinder, cigarettes) decides even in a
        # "Drugs" category, whose prior only outweighs it against a named substance
        non = max(non, named_non)
        if non > 0 or drug_prior <= 0:
            conf = 0.5 + 0.5 * non / (non + 2.0) if non > 0 else 0.3
            return Classification("non_drug", "non_drug", round(conf, 3),
                                  why.get("non_drug", []), {"non_drug": non})
        if _MICROGRAM_DOSE.search(title_norm[:500]):
            return Classification("psychedelic", "lsd", 0.3,
                                  ["(a dose in micrograms, no substance named: LSD)"],
                                  {"@drug": drug_prior})
        return Classification("other_medicine", "other_medicine", 0.15,
                               ["(category says drug; no substance named)"],
                               {"@drug": drug_prior})
    best_class = max(by_class, key=lambda c: by_class[c])
    best = by_class[best_class]
    if non >= best:
        conf = non / (non + best + 1.0)
        return Classification("non_drug", "non_drug", round(conf, 3),
                              why.get("non_drug", []), {"non_drug": non, best_class: best})
    subs = {s: v for s, v in scores.items() if SUBSTANCE_CLASS.get(s) == best_class}
    substance = max(subs, key=lambda s: subs[s])
    if substance.startswith("other_"):
        # a named substance beats the class's catch-all ("Valium ... benzo")
        named = {s: v for s, v in subs.items() if not s.startswith("other_") and v >= 2.0}
        if named:
            substance = max(named, key=lambda s: named[s])
    if substance == "lsd" and "nbome" in title_norm and subs.get("other_psychedelic"):
        substance = "other_psychedelic"  # an NBOMe blotter sold as "LSD" is the NBOMe
    if best_class == "cannabis":
        # the form decides: hash brownies are edibles, Kush seeds are seeds, Big Bud
        # shatter is a concentrate
        for form in ("cannabis_seed", "cannabis_edible", "cannabis_concentrate"):
            if subs.get(form, 0.0) >= 3.0:
                substance = form
                break
    words = list(why[substance])
    strong = [s for s, v in scores.items() if v >= 2.5]
    if len(strong) >= 2 and any(w in _MIX_WORDS for w in title_words):
        best_class = most_harmful_class([SUBSTANCE_CLASS[s] for s in strong])
        substance = "mixed"
        words = [w for s in strong for w in why[s]] + [
            w for w in title_words if w in _MIX_WORDS]
    rest = sum(by_class.values()) - best + non
    conf = best / (best + rest + 1.0)
    return Classification(best_class, substance, round(conf, 3), words,
                          {k: round(v, 3) for k, v in scores.items()})


def _reassign_form_words(scores: dict[str, float], why: dict[str, list[str]],
                         title_norm: str) -> None:
    """Form words that name no substance: a "bar" beside a cannabis word, at a strength
    no alprazolam tablet has, or without a count, strength, pill word or colour beside it
    is no Xanax bar; "seeds" of another named plant are not cannabis seeds, and a
    cartridge of another named drug is no cannabis concentrate."""
    alp = why.get("alprazolam")
    if alp and scores.get("alprazolam", 0.0) > 0 and set(alp) <= _BAR_WORDS:
        cannabis = scores.get("cannabis_edible", 0.0) > 0 \
            or not _EDIBLE_CONTEXT.isdisjoint(title_norm[:500].split(" "))
        doses = [int(m.group(1)) for m in _BIG_DOSE.finditer(title_norm[:500])]
        if cannabis:
            # "THC chocolate bar", "Cannabis edible bar": an edible
            # the bar is then the edible's form word, which decides the cannabis form
            scores["cannabis_edible"] = max(
                scores.get("cannabis_edible", 0.0) + scores.pop("alprazolam"), 3.0)
            why["cannabis_edible"].extend(why.pop("alprazolam"))
        elif (doses and max(doses) > 20) or not _BAR_CONTEXT.search(title_norm[:500]):
            # "Korova 5150 Bar 500mg"; "28 Gram old school Rocky Soap Bar": no pill
            scores.pop("alprazolam")
            why.pop("alprazolam")
    # seeds of another plant, even one no drug ("seeds tobacco"); a cartridge of a drug
    for form, words, drug in (("cannabis_seed", _SEED_FORM_WORDS, False),
                              ("cannabis_concentrate", _CART_FORM_WORDS, True)):
        if _form_of_another(scores, why, form, words, drug):
            scores.pop(form)
            why.pop(form)


def _form_of_another(scores: dict[str, float], why: dict[str, list[str]], form: str,
                     words: frozenset[str], drug: bool) -> bool:
    """Whether ``form`` (a cannabis form) was raised by its form words alone while another
    substance (a drug, when ``drug``) is named in the title and no other cannabis word
    is: "Cebil/Yopo Seeds" are no cannabis seeds, "1ml Opium Vape Cart" no cannabis
    concentrate."""
    raised = why.get(form)
    if not raised or not set(raised) <= words or scores.get(form, 0.0) <= 0:
        return False
    other = any(v > 0 and any(":" not in w for w in why.get(k, ()))
                for k, v in scores.items()
                if k not in (form, "@drug", "@none") and not (drug and k == "non_drug")
                and SUBSTANCE_CLASS.get(k) != "cannabis")  # named in the title
    cannabis = any(scores.get(s, 0.0) > 0 for s in SUBSTANCE_CLASS
                   if SUBSTANCE_CLASS[s] == "cannabis" and s != form)
    return other and not cannabis


def classify(title: str | None, description: str | None = None,
             category_path: list[str] | None = None,
             lexicon: Lexicon | None = None) -> Classification:
    """Classify one listing.

    >>> classify("100x M30 blues pressed").substance
    'oxycodone'
    """
    lex = lexicon or load_lexicon()
    tn = normalise(title)
    return classify_words(tn.split(" ") if tn else [], tn, normalise(description),
                          [c for c in (category_path or []) if c], lex, title)
