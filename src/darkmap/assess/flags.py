"""Harm flags: ``counterfeit_pill`` and ``fentanyl_risk``, each with the words that raised it.

* ``counterfeit_pill``: a pressed pill imitating a pharmaceutical. Raised by an imprint
  that is the classic counterfeit ("M30", "A215" oxycodone), by "press/pressed/replica/
  fake/counterfeit/bootleg" next to a pharmaceutical pill (not an ecstasy pill: those are
  pressed but imitate no medicine), or by a dose that no manufacturer makes (alprazolam
  3, 3.5, 4 or 10 mg "bars"), or by street names of pressed pills at any dose ("hulks",
  "yellow busses", "double dosed" bars, Captagon). "Don't buy fake", "not pressed", "beware of
  presses", "we would not sell fakes" cancel the press/fake words (they are the vendor's
  claim of genuineness).
* ``fentanyl_risk``: fentanyl, an analogue (carfentanil, acetylfentanyl,
  furanylfentanyl...) or a nitazene named, or a counterfeit opioid pill. "Fentanyl test
  strip", "tested for fentanyl", "fentanyl free", "no fent" do not count, and negate only
  the fentanyl word inside them.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from darkmap.assess.lexicon import fold_lookalikes
from darkmap.assess.taxonomy import FENTANYL_SUBSTANCES, PHARMA_PILL_SUBSTANCES, SUBSTANCE_CLASS

__all__ = ["Flags", "assess_flags", "named_fentanyl"]

_IMPRINT = re.compile(r"(?<![a-z0-9])(m\s?-?30s?|a\s?-?215s?|m\s?box\s?30|m\s?box|blues|"
                      r"blue\s?30s?|"
                      r"fake\s?(?:oxy|roxy|roxi|perc)\w*|"
                      r"press(?:ed)?\s?(?:m30|oxy|roxi|perc)\w*)(?![a-z0-9])")
_PRESS = re.compile(r"(?<![a-z])(press|pressed|presses|pressing|replica|replicas|fake|fakes|"
                    r"counterfeit|bootleg|bootlegs|knock\s?off|clone|clones|imitation|"
                    r"dupe|dupes|nachgepresst|gepresst)(?![a-z])")
_NEGATION = re.compile(r"(don\W?t buy fake|dont buy fake|no fakes?|"
                       r"not (?:a )?(?:fake|press|pressed|replica)|"
                       r"beware|avoid (?:fakes?|press)|(?:fake|press)\w* (?:is|are) \w+ beware|"
                       r"not pressed|no press|real not|100% real|authentic|legit pharmacy|"
                       # "we would not sell fakes", "never sell pressed", "we don't do
                       # replicas": a negation up to two words before the press word
                       r"(?<![a-z])(?:not|never|don\W?t|won\W?t|wouldn\W?t)\s++"
                       r"(?:[a-z]++\s++){0,2}(?:fakes?|press(?:ed|es)?|replicas?|"
                       r"counterfeits?|bootlegs?|clones?)(?![a-z]))")
# at most 40 word characters before "fentan"/"nitazen": the match may start at every digit
# of a run, and an unbounded \w* re-read the rest of the run from each (quadratic)
_FENT = re.compile(r"(?<![a-z])(fent\w*|\w{0,40}fentan\w*|carfent\w*|\w{0,40}nitaz[ei]\w*|"
                   r"isotonitazene|phentan\w*|fetty|"
                   r"china white|fu-?f|acetyl\s?fent\w*|u-?4tt)(?![a-z])")
# a phrase that says the item is not fentanyl or is a test for it, fentanyl word included:
# only that word is negated ("Fentanyl 1g + fentanyl test strips" still names fentanyl)
_FENT_NEGATION = re.compile(
    r"(?<![a-z])(?:fent\w{0,30}+\s?(?:test(?:ing)?\s?)?(?:strip|kit|reagent)s?(?![a-z])|"
    r"test(?:s|ing|ed)?\s?(?:(?:strip|kit)s?\s)?for\s(?:\w+\s){0,2}?fent\w{0,30}+|"
    r"detect(?:s|ing|ion)?\s(?:of\s|for\s)?fent\w{0,30}+|"
    r"fent\w{0,30}\s?(?:-|\s)?free|fent\w{0,30}+\stested|"
    r"(?:no|not|without|zero|0%)\s?fent\w{0,30}+)")
_PRESS_HINT = re.compile(r"pres|repli|fake|counterf|bootleg|knock|clone|imitat|dupe|gepresst")
# street names of pressed alprazolam ("hulks", "yellow busses", "double dosed" bars) and of
# Captagon, today a pressed amphetamine pill sold under the fenethylline brand
_SLANG_CF = re.compile(r"(?<![a-z])(hulks?|(?:yellow|school)\s?bus(?:s?es)?|"
                       r"(?:double|triple)[\s-]?dos(?:ed|e)|captagon)(?![a-z])")
_SLANG_SUBSTANCES = frozenset({"alprazolam", "other_benzodiazepine", "other_stimulant",
                               "amphetamine", "mixed"})
_ODD_ALPRAZOLAM_MG = (3.0, 3.5, 4.0, 5.0, 6.0, 10.0)
_PRESS_WHITELIST = re.compile(r"express|wordpress|press id|pressure|presseausweis|paladin press|"
                              r"compressed|press association|espresso|nespresso")


def named_fentanyl(text: str) -> list[str]:
    """The fentanyl and nitazene words of a casefolded ``text`` outside the phrases that
    negate them ("fentanyl test strips", "tested for fentanyl", "fent-free", "no fent"):
    a negation covers only the fentanyl word it is part of."""
    if "fent" not in text and "nitaz" not in text and "china white" not in text \
            and "fu" not in text and "u-4" not in text and "phentan" not in text \
            and "fetty" not in text:
        return []
    return [m.group(1) for m in _FENT.finditer(_FENT_NEGATION.sub(" ", text))]


@dataclass(slots=True)
class Flags:
    """The two flags and, for each, the words or rule that raised it."""

    counterfeit_pill: bool = False
    fentanyl_risk: bool = False
    evidence: dict[str, list[str]] = field(default_factory=dict)


def assess_flags(title: str | None, description: str | None, substance: str,
                 unit_kind: str = "unknown", dose_mg: float | None = None,
                 drug_class: str | None = None) -> Flags:
    """Compute both flags for one listing (after classification and quantity parsing)."""
    out = Flags()
    if substance == "non_drug":
        return out
    t = (title or "").casefold()
    if "&" in t:
        t = html.unescape(t)
    t = fold_lookalikes(t)[0]  # "Fеntanyl" (Cyrillic е), "Fen\u200btanyl", "F e n t a n y l"
    d = (description or "")[:4000].casefold()
    if "&" in d:
        d = html.unescape(d)
    cls = drug_class or SUBSTANCE_CLASS.get(substance, "non_drug")
    pharma = substance in PHARMA_PILL_SUBSTANCES or substance == "mixed"
    cf: list[str] = []

    if cls == "opioid" or substance in ("mixed", "fentanyl", "oxycodone"):
        for m in _IMPRINT.finditer(t):
            w = m.group(1)
            if w == "blues" and cls != "opioid":
                continue
            cf.append(w)
    if pharma and unit_kind in ("pill", "unknown") and cls != "empathogen" \
            and _PRESS_HINT.search(t + d):
        text_for_press = _PRESS_WHITELIST.sub(" ", t + " \n " + d)
        if not _NEGATION.search(t + " " + d):
            cf.extend(m.group(1) for m in _PRESS.finditer(text_for_press))
    if substance in _SLANG_SUBSTANCES and cls in ("sedative", "stimulant", "opioid") \
            and unit_kind in ("pill", "unknown"):
        cf.extend(m.group(1) for m in _SLANG_CF.finditer(t))
    if substance == "alprazolam" and unit_kind == "pill" and dose_mg in _ODD_ALPRAZOLAM_MG:
        cf.append(f"alprazolam {dose_mg:g} mg (no such tablet)")
    if substance == "alprazolam" and dose_mg is None \
            and re.search(r"(?<![\d.])(3|3\.5|4|10)\s*mg", t) \
            and re.search(r"bars?|hulks?|pills?|tabs?", t):
        cf.append("alprazolam bar at a dose no manufacturer makes")
    if cf:
        out.counterfeit_pill = True
        out.evidence["counterfeit_pill"] = list(dict.fromkeys(cf))

    fr: list[str] = []
    if substance in FENTANYL_SUBSTANCES:
        fr.append(f"substance={substance}")
    fr.extend(named_fentanyl(t))
    if out.counterfeit_pill and cls == "opioid":
        fr.append("counterfeit opioid pill")
    if fr:
        out.fentanyl_risk = True
        out.evidence["fentanyl_risk"] = list(dict.fromkeys(fr))
    return out
