"""Pack size and dose from a listing title: "100x 30mg", "3.5g", "QP", "10 tabs 150ug".

Grammar (case-insensitive, on the HTML-unescaped title):

* **mass** ``N (kg|kilo|g|gr|gram|oz|ounce|lb|lbs|pound)`` (a range "1-5GR" its lowest
  weight) and the words ``QP`` (quarter
  pound, 113.4 g), ``HP`` (half pound), ``zip``/``ounce``, ``eighth`` (3.5 g), fractions
  ``1/2 oz``, ``half gram``, ``.2 of a gram``, ``0.5 (SAMPLE)`` (a bare fraction before
  "sample"); an explicit gram figure wins over an ounce figure ("1OZ (28g)" is 28 g); a
  price per gram and no other pack ("50e/g", "$12.50 per Gram") is one gram.
* **dose** ``N (mg|µg|ug|mcg|mcu)`` converted to mg; ranges ``260-270mg`` take the
  middle; ``8mg/2mg`` takes the first, and so does an opioid's combination strength
  ("Codeine 15/500 MG", "Vicodin 7.5/325", "SUBOXONE 8/2": 15, 7.5, 8).
* **count** ``N x``, ``x N``, ``x [N]`` ("OP 80 x 20": 20, the OxyContin imprint's 80
  its dose; a closing ``x N`` wins over an ``N x`` inside the title:
  "M box 30 x 500"), ``N (pills|tabs|caps|blotters|seeds|patches|bars|pcs|blues...)``,
  ("beans", "school buses" are pills, but not a cannabis listing's "Magic Beans"),
  ``(N)`` or ``(QTY N)`` opening the title, ``(N)`` right after a dose ("Oxycodone 30mg
  (100)") or before a price each ("(35) $20 each"), a number written as a word ("ten"),
  or a number opening the title when a dose or a pill word follows ("10 Valium 10mg");
  packs of a counted form after it, ``M x box`` or ``x M boxes`` ("20 tab 100x BOX":
  2,000).
* **pack totals** "5 Pills = 1.25MG": a dose right after "N pills =" is the pack's, each
  pill its share (0.25 mg).
* **multipacks** ``3 x 10 pills`` (30), ``N packs/boxes/strips of M`` (N × M), ``pack of
  M``, ``M count``; letters O written for zeros after a digit ("1OO pills": 100).
* **oxycodone 30s** the imprints M30, A215, "M box 30" and "Perc 30", "Roxy 30", "30s",
  "blues" are pill words for opioids ("100 Perc 30s pressed": 100 pills); an oxycodone
  pack stating no dose takes their 30 mg, noted ("M30 blues x 10").
* **volume** ``N ml``; a count of vials or ampoules of a concentration per ml is their
  millilitres ("10X ... 300mg per ml/10ml": 100 ml at 300 mg/ml, not 10 pills).
* **sprays** a spray is a bottle (``spray``): its content is the largest dose, a smaller
  one is a spray's, the volume is noted ("10mg (10ml)": 1 mg/ml); "X2 Strength" is no
  count. **Patches**: ``dose_mg`` is the delivery rate in mg an hour ("100ug/h": 0.1),
  noted as no content, with the content of a fentanyl patch of a Durogesic strength as an
  estimate ("about 16.8 mg of fentanyl a patch", ``data/patch_content.tsv``); the patch
  word wins over a count word.
* **not doses** an mg figure restating a weight ("1/2g (500mg)"), a dose after "eq",
  "equiv" or "equivalent" (another drug's the seller compares with).
* **not weights** a molar mass or a concentration ("Mr = 233.3 g/mol", "10 g/l"); a count
  glued to the word opening the title is a count ("10xMedikinet á 20mg": 10 pills).

The unit kind comes from the form word (pill, blotter, seed, patch, spray, piece, ml) or, for a
count without one, from the substance (LSD -> blotter, seeds -> seed, edibles and
concentrates (cartridges, pens) -> piece unless capsules or tablets are named, otherwise
pill); a pill of another psychedelic dosed in µg or named a blotter is a
blotter. A lone "250mg" is a *dose* for pharmaceutical pills and edibles and an
*amount* (0.25 g) for substances sold by weight. A count beside a weight per unit of a
substance sold as tablets is tablets when the weight is one of its strengths, in grams or
(written loosely) in milligrams: "LORAZEPAM (tavor) 2,5 gr x 10" is ten 2.5 mg tablets
(``data/tablet_strengths.tsv``). Tiered titles ("1g/3.5g/7g") take the
first tier and say so. Anything else is ``unit_kind="unknown"`` with a reason: never a
silent guess. Every parse carries a confidence.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise

from darkmap.assess.taxonomy import OPIOID_PILL_SUBSTANCES, PHARMA_PILL_SUBSTANCES

__all__ = ["Quantity", "UNIT_KINDS", "parse_quantity"]

UNIT_KINDS = ("pill", "blotter", "gram", "ml", "seed", "patch", "spray", "piece", "unknown")

_NUM = r"(\d{1,3}(?:,\d{3})+|\d+(?:[.,]\d+)?|(?<![a-z\d])\.\d+)"
_MASS_UNITS = {
    "kg": 1000.0, "kgs": 1000.0, "kilo": 1000.0, "kilos": 1000.0, "kilogram": 1000.0,
    "kilograms": 1000.0, "k": 1000.0,
    "g": 1.0, "gr": 1.0, "grs": 1.0, "gram": 1.0, "grams": 1.0, "gramm": 1.0, "gramos": 1.0,
    "gramo": 1.0, "grammes": 1.0, "gramme": 1.0, "grammi": 1.0, "gm": 1.0, "gms": 1.0,
    "oz": 28.3495, "ounce": 28.3495, "ounces": 28.3495, "onz": 28.3495, "zip": 28.3495,
    "zips": 28.3495,
    "lb": 453.592, "lbs": 453.592, "pound": 453.592, "pounds": 453.592, "p": 453.592,
}
_DOSE_UNITS = {"mg": 1.0, "mgs": 1.0, "milligram": 1.0, "milligrams": 1.0,
               "ug": 0.001, "µg": 0.001, "μg": 0.001, "mcg": 0.001, "mcu": 0.001,
               "microgram": 0.001, "micrograms": 0.001, "mic": 0.001, "y": 0.001}
_FORM_WORDS = {
    "pill": "pill", "pills": "pill", "pils": "pill", "pil": "pill", "tab": "pill",
    "tabs": "pill", "tablet": "pill", "tablets": "pill", "tb": "pill", "caps": "pill",
    "cap": "pill", "capsule": "pill", "capsules": "pill", "bar": "pill", "bars": "pill",
    "pcs": "pill", "pieces": "pill", "piece": "pill", "pc": "pill", "units": "pill",
    "unit": "pill", "pillen": "pill", "st": "pill", "stk": "pill", "stück": "pill",
    "teile": "pill", "comprimidos": "pill", "comprimés": "pill", "comprimes": "pill",
    "comprimé": "pill", "stuks": "pill", "stuk": "pill",
    "blister": "pill", "blisters": "pill", "count": "count",
    "pastillas": "pill", "roxies": "pill", "xtc": "pill", "hulks": "pill", "blues": "pill",
    "beans": "pill", "bean": "pill", "buses": "pill", "busses": "pill",
    "blotter": "blotter", "blotters": "blotter", "hits": "blotter", "hit": "blotter",
    "microdots": "blotter", "paper": "blotter", "papers": "blotter",
    "seed": "seed", "seeds": "seed", "samen": "seed",
    "patch": "patch", "patches": "patch", "pflaster": "patch",
    "pops": "piece", "chews": "piece", "candies": "piece", "tarts": "piece",
    "lollipops": "piece", "suckers": "piece", "gummies": "piece",
    "brownies": "piece", "cookies": "piece", "chocolates": "piece", "pack": "piece",
    "ampoule": "ml", "ampul": "ml", "ampoules": "ml", "vial": "ml", "vials": "ml",
}
# "100 beans" are pills (ecstasy, Xanax), but "Magic Beans" is also a cannabis strain
_BEANS = frozenset({"bean", "beans"})
_WORD_NUMBERS = {"single": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                 "seven": 7, "eight": 8, "nine": 9, "ten": 10, "twelve": 12,
                 "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50, "hundred": 100}
_SLANG_GRAMS = {"qp": 113.398, "quarter pound": 113.398, "hp": 226.796,
                "half pound": 226.796, "half oz": 14.1748, "half ounce": 14.1748,
                "quarter oz": 7.0874, "quarter ounce": 7.0874, "eighth": 3.5,
                "an eighth": 3.5, "1 8th": 3.5, "8th": 3.5, "half kilo": 500.0,
                "half a kilo": 500.0, "half key": 500.0, "key": 1000.0, "half zip": 14.1748,
                "half gram": 0.5, "half a gram": 0.5, "half g": 0.5, "half gr": 0.5}

# Numbers of at most 9 digits: the match may start at every digit of a run, and an
# unbounded number re-read the rest of the run from each (quadratic on 10,000 digits).
_SLANG_RE = re.compile(r"(?<![a-z])(?:(\d{1,9}(?:\.\d{1,9})?)\s*)?(" + "|".join(
    re.escape(p) for p in sorted(_SLANG_GRAMS, key=len, reverse=True)) + r")(?![a-z])")
_DIGIT = re.compile(r"\d")
_SLANG_HINT = re.compile(r"qp|hp|half|quarter|eighth|8th|key|zip")
_WORD_HINT = re.compile(r"single|one|two|three|four|five|six|seven|eight|nine|ten|twelve|"
                        r"fifteen|twenty|thirty|fifty|hundred")
_FRACTION = re.compile(r"(?<![\d.])(\d+)\s*/\s*(\d+)\s*"
                       r"(oz|ounce|ounces|lb|lbs|pound|g|gr|gram|grams|kg|kilo)\b")
# spaces around an optional bracket or dash are possessive (\s*X?\s* splits a run of
# spaces every way before failing: quadratic on "1" and 10,000 spaces)
# not after a currency sign: "$165 Oz" is a price per ounce, not 165 ounces
_MASS = re.compile(r"(?<!\d)(?<!\d\.)(?<![$€£])(?<![$€£] )" + _NUM
                   + r"\s*+[)*\]]?\s*+(kilograms?|kilos?|kgs?|grams?|"
                   r"gramm|grammes?|grammi|gramos?|grs?|gms?|g|ounces?|onz|oz|zips?|pounds?|"
                   r"lbs?|k|p)(?![a-z0-9µμ])")
# "10xMedikinet á 20mg", "5XSAMPLE(25B...": a count glued to the name opening the title
_GLUED_X = re.compile(r"^(\W{0,3}\d{1,6})x([a-z]{3})")
# "233.3 g/mol", "10 g/l": a molar mass or a concentration, not a weight of the drug
_PER_UNIT = re.compile(r"\s*+/\s*+(?:mol|mole|l|dl|ml|cm3|cm³)(?![a-z])")
_DOSE = re.compile(r"(?<!\d)(?<!\d\.)" + _NUM + r"(?:\s*+(?:-|–|to)\s*+" + _NUM + r")?\s*+\+?\s*+"
                   r"(milligrams?|mgs?|micrograms?|mcg|mcu|ug|µg|μg|mic|y)(?![a-z])")
# _VOLUME and _TIERS may start at every digit of a run (no look-behind): their numbers
# are bounded (a number of more than 20 digits is no quantity: ``_num`` refuses it), or
# each start would re-read the rest of the run (quadratic on 10,000 digits).
_NUM_BOUNDED = (r"(\d{1,3}(?:,\d{3}){1,8}|\d{1,20}(?:[.,]\d{1,20})?"
                r"|(?<![a-z\d])\.\d{1,20})")
_VOLUME = re.compile(_NUM_BOUNDED + r"\s*(ml|millilit(?:er|re)s?|cl|l)(?![a-z])")
# not after a currency sign ("Only $25 each pill" is a price), and no price word between
# the number and the form word ("25 per pill", "25 each pill")
_COUNT_FORM = re.compile(r"(?<![\d./a-z$€£])(?<![$€£] )(\d{1,3}(?:,\d{3})+|\d{1,6})\s*(?:x\s*)?"
                         r"(?:-\s*)?(?:(?<=[\sx-])(?!mgs?\b|ug\b|mcg\b|g\b|grs?\b|ml\b|of\b|each\b|"
                         r"per\b|an?\b|usd\b|eur\b|dollars?\b)[a-z]+\s+)?(" + "|".join(
    sorted(_FORM_WORDS, key=len, reverse=True)) + r")(?![a-z])")
_COUNT_X = re.compile(r"(?<![\d.,/a-z$€£])(?<![$€£] )(\d{1,3}(?:,\d{3})+|\d{1,6})\s*(?:x|pcs|qty)"
                      r"(?![a-z])|(?<![a-z])x\s*+\[?\s*+(\d{1,3}(?:,\d{3})+|"
                      r"\d{1,3}(?: \d{3})+(?![\d.,])|\d{1,6})(?![\d.,]*\s*(?:mg|g|ug|mcg|ml|gr|%))")
# "OP 80 x 20", "OC 40 x 10": an OxyContin imprint (and its strength) before the "x"
_OXY_IMPRINT = re.compile(r"(?<![a-z])o[pc]\s?-?$")
# "20 tab 100x BOX", "20 tabs x 5 boxes": a number of packs of the count before it
_PACKS = re.compile(r"(?<![\d.,])(?:(\d{1,4})\s*x\s*|x\s*(\d{1,4})\s+)"
                    r"(?:boxes|box|packs|pack|blisters|blister|strips|strip)(?![a-z])")
# "Pack of 10", "4 packs of 4 tabs", "10 strips of 10", "5 boxes of DHC 28 x 30mg": packs
# (a number of them, or one) of the count after "of", at most two words between
_PACKS_OF = re.compile(r"(?:(?<![\d.,])(\d{1,4})\s*+)?(?<![a-z])(?:packs?|box(?:es)?|bottles?|"
                       r"strips?|blisters?)\s++of\s++(?:[a-z]++\s++){0,2}(\d{1,6})(?![\d.,]|"
                       r"\s*+(?:mgs?|g|grs?|ml|ug|mcg|%)(?![a-z]))")
# "1-5GR", "4-6 Grams", "10 to 50 grams": the lower bound just before a weight (a window)
_MASS_RANGE = re.compile(r"(?<![\d.,#])(\d{1,5}(?:[.,]\d{1,3})?)\s*+(?:-|–|to)\s*+$")
_OF_A_GRAM = re.compile(r"(?<![\d.,])(\d{0,3}[.,]\d{1,3}|\d{1,3}/\d{1,2})\s++of\s++an?\s++gram"
                        r"(?![a-z])")
# "0.5 (SAMPLE) COLOMBIAN FLAKES": a bare fraction of a unit before "sample" is grams
_BARE_SAMPLE = re.compile(r"(?<![\d.,])(\d?[.,]\d{1,2})\s*+[(\[]?\s*+samples?(?![a-z])")
_BLOTTER_WORD = re.compile(r"(?<![a-z])(?:blotters?|hits?|papers?|microdots)(?![a-z])")
# "1OO pills": letters O written for zeros after a digit
_LETTER_O = re.compile(r"(?<![a-z\d.,])([1-9]\d{0,2})(o{1,4})(?![a-z\d])")
# "... 30 x 500" closing the title: the count is the number after the last "x"
_TRAILING_X = re.compile(r"(?<![a-z])x\s*(\d{1,3}(?:,\d{3})+|\d{1,6})\s*$")
_QTY = re.compile(r"(?:qty|quantity|menge|anzahl)\s*+[#:]?\s*+0*(\d{1,6})(?!\d)|"
                  r"^\s*+[\[(]\s*+(\d{1,6})\s*+x?\s*+[\])]")  # possessive: no split of a run
# "(100)", "[50]": a bare number in brackets (a count when a dose or a price each is beside
# it); spaces bounded (an unbounded run read from every start is quadratic)
_BRACKET_COUNT = re.compile(r"[(\[]\s{0,3}(\d{1,5})\s{0,3}[)\]]")
# "$20 each", "25€ each", "USD 20 per cart": a price of one unit after a count
_PRICE_EACH = re.compile(r"\s*+(?:(?:[$€£]|usd|eur)\s*+\d{1,6}(?:[.,]\d{1,2})?|"
                         r"\d{1,6}(?:[.,]\d{1,2})?\s*+(?:[$€£]|usd|eur))\s*+"
                         r"(?:each|ea|per|a piece|apiece)(?![a-z])")
# "50e/g", "$12.50 per Gram", "80 USD a gram": a price per gram (bounded numbers, one
# currency word or sign, no repetition over free text)
_PER_GRAM_PRICE = re.compile(r"(?:[$€£]\s*+\d{1,6}(?:[.,]\d{1,2})?|"
                             r"(?<![\d.,])\d{1,6}(?:[.,]\d{1,2})?\s*+(?:[$€£e]|usd|eur|euros?|dollars?))\s*+(?:/|per|an?)\s*+"
                             r"(?:g|gr|grams?|gramm)(?![a-z])")
# "5 Pills = 1.25MG": what joins a count to the total dose of the pack
_EQUALS = re.compile(r"\s{0,3}=\s{0,3}")
# "Eq. 90mg Adderall", "equivalent to 20mg Ritalin", "equiv. 400mg": a comparison follows
_EQUIVALENT = re.compile(r"(?<![a-z])(?:eq|equiv|equivalent|equivalence)(?![a-z])")
_LEADING = re.compile(r"^\W*(\d{1,6})(?![\d.,]|\s*+%|[a-z]|\s*+-?\s*+"
                      r"(?:mgs?|milligrams?|micrograms?|ug|µg|mcg|g|grs?|grams?|ml|kgs?|kilos?|oz|lbs?|x)\b)")
_WORD_COUNT = re.compile(r"\b(" + "|".join(_WORD_NUMBERS) + r")\b\s*(?:\(\w+\)\s*)?(?:x\b|"
                         + "|".join(sorted(_FORM_WORDS, key=len, reverse=True))
                         + r"|\d|[a-z]+\s+\d)")
# "94%" is a purity; "100% real" is a sales claim, not a purity cue
_POWDER_CUES = re.compile(r"hcl|powder|pulver|crystals?|uncut|citrate|\bbase\b|\braw\b|"
                          r"(?<!\d)(?!100\s*%)\d{1,3}(?:[.,]\d{1,3})?\s*%|purity|\bpure\b")
# "1st class", "21st": an ordinal, not a count of one piece ("st" is also Stück); only
# "st" needs this (no other ordinal suffix is a form word), "11st" is eleven Stück
_ORDINAL_ST = re.compile(r"(?<![\d.,])(?:\d{0,5}[02-9])?1st(?![a-z])")
# a mass that is a minimum order ("[Min 4oz]", "4 OZ Minimum", "MOQ 1kg"), not the pack
_MIN_BEFORE = re.compile(r"(?:(?<![a-z])min|minimum|moq)\.?\W{0,3}(?:order\W{0,3})?(?:of\W{0,3})?$")
_MIN_AFTER = re.compile(r"\W{0,3}(?:min|minimum|moq)(?![a-z])")
# a bare "kilo" beside "1.000g" says the dot separates thousands ("Cocaine 1.000g kilo")
_BARE_KILO = re.compile(r"(?<![\d.,])(?<!\d )(?:kilos?|kg|kilogram)(?![a-z])")
# "250 ORANGE OWLS 240+ MG": a count, one to four words of pill name, then the dose
_COUNT_BEFORE_DOSE = re.compile(r"(?<![\w.,/$€£#:+-])(\d{1,5})\s++((?:[a-z][a-z'’]*+\s++){1,4})"
                                r"(?:[(\[]\s*+)?$")
_NOT_A_NAME = frozenset({
    "x", "mg", "mgs", "g", "gr", "grs", "gram", "grams", "kg", "kilo", "oz", "lb", "lbs", "ml",
    "ug", "mcg", "of", "for", "get", "free", "at", "per", "each", "only", "and", "or", "to",
    "with", "off", "buy", "the", "a", "an", "in", "on", "from", "usd", "eur", "dollars",
    "percent", "pack", "packs", "box", "boxes", "st", "level", "top", "over", "up", "than",
    "mix", "vs", "by", "is", "are", "day", "days", "hour", "hours", "week", "weeks"})
_THC_DOSE = re.compile(r"\W{0,3}(?:thc|cbd)(?![a-z])")
# "1000x Red Defqon.1 & 10gr Cocaine": a count and a weight of two different products
_JOINER = re.compile(r"&|\+|(?<![a-z])(?:and|with|plus)(?![a-z])")
# "10-100 pills", "5 - 100 LSD BLOTTERS": the lower bound of a count range, just before
# the count (searched in a window of a dozen characters: possessive, never a rescan)
_COUNT_RANGE = re.compile(r"(?<![\d.,])(\d{1,6})\s*+(?:-|–|to)\s*+$")
# The street names of oxycodone 30 mg tablets and of the pressed copies of them (the main
# fentanyl vector): the imprints M30 and A215, "M box 30", "Perc 30", "Roxy 30", "30s",
# "blues". Each is a pill; for oxycodone, one of 30 mg.
_OXY30_BODY = (r"(m\s?-?30s?|a\s?-?215s?|m\s?box\s?30s?|(?:percs?|percocets?|roxys?|roxies|roxi|"
               r"oxys?|blues?)\s?-?30s?|30s|blues)(?![a-z0-9])")
_OXY30 = re.compile(r"(?<![a-z0-9])" + _OXY30_BODY)
# "100 Perc 30s", "Pressed 50 M30 blues": a count, at most one word, the street name
_OXY30_COUNT = re.compile(r"(?<![\d.,/a-z$€£])(\d{1,6})\s*+(?:x\s*+)?(?:(?!mgs?\b|ug\b|mcg\b|"
                          r"g\b|grs?\b|ml\b|of\b|each\b|per\b|usd\b|eur\b)[a-z]++\s++)?"
                          + _OXY30_BODY)
# the substances whose pills go by these names (a press sold as fentanyl is one)
_OXY30_SUBSTANCES = frozenset(OPIOID_PILL_SUBSTANCES | {"fentanyl_analogue", "mixed"})
_TIERS = re.compile(_NUM_BOUNDED + r"\s*(?:g|gr|grams?|oz)\s*(?:/|\||or|-)\s*"
                    + _NUM_BOUNDED + r"\s*(?:g|gr|grams?|oz)\b")


@dataclass(slots=True)
class Quantity:
    """A parsed pack: ``units`` of ``unit_kind``, each of ``dose_mg`` (when stated)."""

    units: float | None
    unit_kind: str
    dose_mg: float | None
    confidence: float
    note: str = ""

    @property
    def grams(self) -> float | None:
        """Pack weight in grams when the pack is sold by weight."""
        return self.units if self.unit_kind == "gram" else None


def _num(s: str) -> float | None:
    s = s.strip()
    if re.fullmatch(r"\d{1,3}(,\d{3})+", s) or re.fullmatch(r"\d{1,3}( \d{3})+", s):
        s = s.replace(",", "").replace(" ", "")
    else:
        s = s.replace(",", ".")
    try:
        v = float(s)
    except ValueError:
        return None
    return v if v == v and v < 1e9 else None


_GRAM_UNITS = frozenset({"g", "gr", "grs", "gram", "grams", "gramm", "gms", "gm", "grammes",
                         "gramme", "gramo", "gramos"})


def _load_tablet_strengths() -> dict[str, tuple[float, float]]:
    """``data/tablet_strengths.tsv``: substance -> (lowest, highest) tablet strength in mg."""
    text = resources.files("darkmap.assess").joinpath("data", "tablet_strengths.tsv") \
        .read_text(encoding="utf-8")
    out: dict[str, tuple[float, float]] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if line.startswith("#") or len(parts) < 3:
            continue
        out[parts[0].strip()] = (float(parts[1]), float(parts[2]))
    return out


TABLET_STRENGTHS_MG = _load_tablet_strengths()


def _load_patch_content() -> dict[tuple[str, float], float]:
    """``data/patch_content.tsv``: (substance, rate in µg/h) -> estimated content in mg."""
    text = resources.files("darkmap.assess").joinpath("data", "patch_content.tsv") \
        .read_text(encoding="utf-8")
    out: dict[tuple[str, float], float] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if line.startswith("#") or len(parts) < 3:
            continue
        out[(parts[0].strip(), float(parts[1]))] = float(parts[2])
    return out


PATCH_CONTENT_MG = _load_patch_content()


def _patch_content_note(substance: str | None, rate_mg_h: float,
                        units: float | None) -> str | None:
    """The note on what a patch of this rate holds ("about 16.8 mg of fentanyl a patch"),
    for a substance and rate in ``patch_content.tsv`` (12.5 µg/h is the 12); else None."""
    rate = round(rate_mg_h * 1000, 3)
    content = PATCH_CONTENT_MG.get((substance or "", 12.0 if rate == 12.5 else rate))
    if content is None:
        return None
    pack = f", about {units * content:g} mg in the pack" if units else ""
    return (f"about {content:g} mg of {substance} a patch{pack} (a Durogesic DTrans "
            "matrix patch of that rate: an estimate, brands differ)")


def _tablet_strength(grams: float, unit: str, substance: str | None,
                     t: str) -> tuple[float, str] | None:
    """The tablet strength (mg, and a note) a weight per unit of a tablet substance names.

    "Tramadol 0,2 g x 10": 0.2 g is a 200 mg tablet. "LORAZEPAM (tavor) 2,5 gr x 10": no
    lorazepam tablet weighs 2.5 g of the drug, 2.5 mg is a Tavor tablet; sellers write "g"
    and "gr" loosely. Only a substance with tablet strengths in ``tablet_strengths.tsv``,
    a weight in grams, and a title without powder cues ("powder", "pure", "99%"): a
    powder of a tablet substance ("Alprazolam powder 1g x 10") stays grams, and so does a
    weight that is no strength either way ("Diazepam 50g x 2")."""
    span = TABLET_STRENGTHS_MG.get(substance or "")
    if span is None or unit not in _GRAM_UNITS or _POWDER_CUES.search(t):
        return None
    low, high = span
    if low <= grams * 1000 <= high:
        return grams * 1000, f"{grams:g} g per unit read as a {grams * 1000:g} mg tablet"
    if low <= grams <= high:
        return grams, (f"{grams:g} g per unit is no {substance} tablet: read as "
                       f"{grams:g} mg, a tablet strength")
    return None


def _count_before_dose(t: str, dose: tuple[float, int, int, bool]) -> float | None:
    """"250 ORANGE OWLS 240+ MG": the count of a pill named between it and its dose.

    One to four words of letters between the number and the dose, none of them a unit,
    a price word or a joiner; the number is not the dose restated ("OP 80 ... 80mg")."""
    m = _COUNT_BEFORE_DOSE.search(t, max(0, dose[1] - 60), dose[1])
    words = set(m.group(2).split()) if m else set()
    if m is None or not words.isdisjoint(_NOT_A_NAME) or not words.isdisjoint(_FORM_WORDS):
        return None  # a form word between them was the count rule's to read, not this
    before = re.findall(r"[a-z]+", t[max(0, m.start() - 20):m.start()])
    if before and before[-1] in _FORM_WORDS:
        return None  # "CHILL PILL 4 EVERYONE 500MG": the number follows the pill word
    n = _num(m.group(1))
    if n is None or n < 2 or abs(n - dose[0]) < 1e-9:
        return None
    return n


def _bracket_count(t: str, doses: list[tuple[float, int, int, bool]]) -> re.Match[str] | None:
    """A bare number in brackets that is the pack count: right after a dose ("Oxycodone
    30mg (100)", "Xanax 2mg [50]") or before a price each ("1000mg Vape Cartridge SFV OG
    (35) $20 each": 35 cartridges at $20, not 1 g at $700)."""
    if "(" not in t and "[" not in t:
        return None
    ends = {d[2] for d in doses}
    for m in _BRACKET_COUNT.finditer(t):
        after_dose = any(e in ends and not t[e:m.start()].strip()
                         for e in range(max(0, m.start() - 3), m.start() + 1))
        if after_dose or _PRICE_EACH.match(t, m.end()):
            return m
    return None


def _pack_total(t: str, cm: re.Match[str], count: float,
                doses: list[tuple[float, int, int, bool]], dose: float,
                notes: list[str]) -> float:
    """A pill's dose when the dose right after "N pills =" is the pack's total.

    "Halcion [Triazolam] 5 Pills = 1.25MG" is five 0.25 mg tablets (1.25 mg the five
    together), not five of 1.25 mg; only a dose that follows the counted form word and an
    "=" with nothing else between ("10 tabs 2mg = 20mg total" states the pill's first)."""
    for d in doses:
        if d[1] >= cm.end() and _EQUALS.fullmatch(t, cm.end(), d[1]):
            notes.append(f"{count:g} pills = {d[0]:g} mg: the pack's total, "
                         f"{d[0] / count:g} mg a pill")
            return round(d[0] / count, 6)
    return dose


def _not_restated(doses: list[tuple[float, int, int, bool]],
                  grams: list[tuple[float, str, int, int]],
                  notes: list[str]) -> list[tuple[float, int, int, bool]]:
    """The doses that do not restate a weight of the title in mg: "(1x) 1/2g (500mg) CO2
    Extract" is 0.5 g, its 500 mg no dose of a pill."""
    weights = {round(g[0] * 1000, 6) for g in grams if g[1] in _GRAM_UNITS}
    kept = [d for d in doses if round(d[0], 6) not in weights]
    if len(kept) < len(doses):
        notes.append("a dose in mg restating the weight: no dose")
    return kept


def _before_equivalence(t: str, doses: list[tuple[float, int, int, bool]],
                        notes: list[str]) -> list[tuple[float, int, int, bool]]:
    """The doses before an equivalence word ("~ Eq. 90mg Adderall or 15mg Desoxyn",
    "equivalent to 20mg Ritalin"): what follows one is another drug's dose the seller
    compares the product with, not the product's."""
    m = _EQUIVALENT.search(t)
    if m is None:
        return doses
    kept = [d for d in doses if d[1] < m.start()]
    if len(kept) < len(doses):
        notes.append(f"a dose after '{m.group(0)}' is another drug's equivalent: not read")
    return kept


def _range_low(t: str, start: int, count: float | None,
               doses: list[tuple[float, int, int, bool]], notes: list[str]) -> float | None:
    """The lowest tier of a count range ending at ``start`` ("10-100 pills": 10).

    A tiered title's price is most likely for its smallest pack (as "1g/3.5g/7g" takes its
    first tier). Not a range: a lower bound that is not below the count, or one that
    restates a dose of the title ("Zapam 10 - 100 x 10mg" is 100 tablets of Zapam 10).
    A range found is stated in ``notes``."""
    m = _COUNT_RANGE.search(t, max(0, start - 12), start)
    low = _num(m.group(1)) if m else None
    if low is None or count is None or not 0 < low < count \
            or any(abs(low - d[0]) < 1e-9 for d in doses):
        return None
    notes.append(f"count range {low:g}-{count:g}: the lowest tier taken")
    return low


def _packs_of(m: re.Match[str], count: float | None, kind: str,
              notes: list[str]) -> tuple[float | None, str]:
    """The count a "packs of" phrase states: "Pack of 10" is 10 when no other count was
    read, "4 packs of 4 tabs" (the count read, 4) is 16, "5 boxes of DHC 28 x 30mg" 140."""
    outer = _num(m.group(1)) if m.group(1) else 1.0
    inner = _num(m.group(2))
    if inner is None or outer is None or (count is not None and count != inner):
        return count, kind
    if outer > 1:
        notes.append("packs of the count multiplied")
    return inner * outer, kind


def _mass_range_low(t: str, start: int, mass: float, notes: list[str]) -> float:
    """The lowest tier of a weight range ending at ``start`` ("1-5GR": 1, "4-6 Grams": 4).

    As for a count range, a tier list's price is most likely its smallest pack's: "1-5GR
    PURE CRYSTAL METH" at $5.58 is 1 g, not 5 g at $1.12/g. A grade before a dash is no
    range ("Heroin #3 - 7 gram"), nor is a lower bound that is not below the weight."""
    m = _MASS_RANGE.search(t, max(0, start - 14), start)
    low = _num(m.group(1)) if m else None
    if low is None or not 0 < low < mass:
        return mass
    notes.append(f"weight range {low:g}-{mass:g} g: the lowest tier taken")
    return low


def _default_kind(substance: str | None) -> str:
    if substance == "lsd":
        return "blotter"
    if substance == "cannabis_seed":
        return "seed"
    if substance == "cannabis_edible":
        return "piece"
    return "pill"


def parse_quantity(title: str | None, substance: str | None = None) -> Quantity:
    """Parse pack size, unit kind and dose from a title (``substance`` guides defaults).

    >>> q = parse_quantity("100x 30mg Roxy-Oxycodone", "oxycodone")
    >>> (q.units, q.unit_kind, q.dose_mg)
    (100.0, 'pill', 30.0)
    """
    if not title:
        return Quantity(None, "unknown", None, 0.0, "no title")
    t = html.unescape(title).casefold() if "&" in title else title.casefold()
    t = t.replace("×", "x").replace("\u00a0", " ")
    if "1st" in t:
        t = _ORDINAL_ST.sub("first", t)
    if "x" in t[:12]:
        t = _GLUED_X.sub(r"\1x \2", t, count=1)
    if "o" in t:
        t = _LETTER_O.sub(lambda m: m.group(1) + "0" * len(m.group(2)), t)
    if " of a" in t:
        t = _OF_A_GRAM.sub(r"\1 g", t)  # ".2 of a gram": 0.2 g
    q = _imprint_dose(_read(t, substance), t, substance)
    if "/" in t and substance in OPIOID_PILL_SUBSTANCES | {"other_opioid"}:
        q = _combination(q, t)
    if "ml" in t and q.unit_kind in ("pill", "ml") and (conc := _CONC.search(t)) \
            and not _TABLET_WORD.search(t):
        q = _vials(q, t, conc)
    if "spray" in t and q.unit_kind not in ("gram", "blotter", "seed", "patch") \
            and _SPRAY.search(t):
        return _spray(q, t)
    if "patch" in t or "pflaster" in t:
        return _patch(q, t, substance)
    return q


# a (nasal) spray: one bottle; "2x 10ml" or a title opening "3 x" counts bottles
_SPRAY = re.compile(r"(?<![a-z])sprays?(?![a-z])")
_SPRAY_COUNT = re.compile(r"^\W{0,3}(\d{1,4})\s*+x(?![a-z])|(?<![\d.,])(\d{1,4})\s*+x\s*+"
                          r"(?=\d{1,6}(?:[.,]\d{1,6})?\s*+(?:ml|mg)(?![a-z]))")
_PATCH = re.compile(r"(?<![a-z])(?:patch|patches|pflaster)(?![a-z])")
# "100ug/h", "12mcg/hr", "10mg/hr": what a patch delivers an hour
_RATE = re.compile(r"\s*+/\s*+(?:h|hr|hrs|hour)(?![a-z])")


def _spray(q: Quantity, t: str) -> Quantity:
    """A spray listing: bottles, each of the content its largest dose states.

    "Fentanyl Nasal Spray 20mg - X2 Strength (200ug)" is one bottle of 20 mg ("X2
    Strength" is no count; 0.2 mg is one spray's dose, noted); "Fentanyl Nasal Spray 10mg
    (10ml)" one bottle of 10 mg in 10 ml (1 mg/ml, noted), never 10 mg per ml."""
    doses = sorted({round(v, 6) for v, _ in _doses(t)}, reverse=True)
    content = doses[0] if doses else None
    notes = ["spray bottle: dose_mg is the bottle's content"]
    notes += [f"{d:g} mg a spray" for d in doses[1:]]
    vm = _VOLUME.search(t) if "ml" in t else None
    vol = _num(vm.group(1)) if vm and vm.group(2) == "ml" else None
    if vol:
        notes.append(f"{vol:g} ml bottle" + (f": {content / vol:g} mg/ml" if content else ""))
    cm = _SPRAY_COUNT.search(t)
    units = _num(cm.group(1) or cm.group(2)) if cm else 1.0
    return Quantity(units or 1.0, "spray", content, min(q.confidence or 0.6, 0.6),
                    _join(notes))


# "15/500 MG", "7.5/325", "100/8 mg", "8/2": an opioid and paracetamol (or naloxone)
_COMBO = re.compile(r"(?<![\d.,/])(\d{1,3}(?:\.\d{1,2})?)\s?/\s?(\d{1,4}(?:\.\d{1,2})?)(?![\d.,/])"
                    r"(?!\s*+(?:g|gr|grams?|oz|ml|lbs?|kg|µg|ug|mcg|%)(?![a-z]))\s*+(mgs?)?")


def _combination(q: Quantity, t: str) -> Quantity:
    """The opioid's strength of a combination product: the first figure.

    "Codeine 15/500 MG" is 15 mg of codeine (500 mg is the paracetamol), "Tilidin comp
    100/8 mg" 100 mg of tilidine (8 mg is the naloxone), "SUBOXONE 8/2" 8 mg. Without a
    unit, only a second figure of a paracetamol, aspirin or ibuprofen strength (200 mg or
    more) or a naloxone share (a quarter, 1/12.5) is a combination ("24/7" is no dose).
    A dose stated elsewhere in the title wins ("Oxycodone 30mg x 10 - support 24/7")."""
    for m in _COMBO.finditer(t):
        a, b = _num(m.group(1)), _num(m.group(2))
        if not a or not b or a == b:
            continue
        if m.group(3) is None and not (b >= 200 > a or b * 4 == a or b * 12.5 == a):
            continue
        if q.dose_mg is not None and abs(q.dose_mg - b) > 1e-9:
            return q
        note = f"combination strength {a:g}/{b:g}: the first figure (the opioid) taken"
        first = "dose stated, pack count not stated" if q.units is None else q.note
        return Quantity(q.units, q.unit_kind, a, q.confidence or 0.6,
                        _join([first, note] if first else [note]))
    return q


# "300mg per ml", "100 mg/1 ml", "20 mg / ml": a concentration, and its millilitres
_CONC = re.compile(r"(?<![\d.,])(\d{1,4}(?:[.,]\d{1,2})?)\s*+mg\s*+(?:/|per)\s*+"
                   r"(?:(\d{1,3}(?:[.,]\d{1,2})?)\s*+)?ml(?![a-z])")
_TABLET_WORD = re.compile(r"(?<![a-z])(?:pills?|tabs?|tablets?|caps|capsules?)(?![a-z])")


def _vials(q: Quantity, t: str, conc: re.Match[str]) -> Quantity:
    """A count of vials or ampoules of a concentration: their millilitres, dose per ml.

    "10X Testosterone Cypionate 300mg per ml/10ml" is ten 10 ml bottles (100 ml at 300
    mg/ml), not ten pills of 300 mg; "5x100 mg/1 ml" five 1 ml ampoules (5 ml); "Medigen
    Test Prop 100mg/1ml. 10ml Bottle" one 10 ml bottle (the "1ml" is the concentration's).
    A container's volume is the first volume outside the concentration, else the
    concentration's own millilitres. Only a concentration per one millilitre: "100mg/10ml"
    is written both for 100 mg/ml in a 10 ml vial and for 10 mg/ml."""
    mg, per = _num(conc.group(1)), _num(conc.group(2)) if conc.group(2) else 1.0
    if not mg or per != 1.0:
        return q  # "Masteron 100mg/10ml": 100 mg/ml in 10 ml or 10 mg/ml? Left as read
    vol = per
    for vm in _VOLUME.finditer(t):
        if vm.group(2) == "ml" and not conc.start() <= vm.start() < conc.end():
            vol = _num(vm.group(1)) or per
            break
    n = q.units if q.unit_kind == "pill" and q.units else 1.0
    note = f"{n:g} x {vol:g} ml at {mg / per:g} mg/ml" if n > 1 else \
        f"{vol:g} ml at {mg / per:g} mg/ml"
    return Quantity(round(n * vol, 4), "ml", round(mg / per, 6), min(q.confidence, 0.7),
                    _join([note, "volume"]))


def _doses(t: str) -> list[tuple[float, bool]]:
    """Every dose of a title in mg, and whether a per-hour rate follows it ("100ug/h")."""
    out: list[tuple[float, bool]] = []
    for m in _DOSE.finditer(t) if _DIGIT.search(t) else ():
        v = _num(m.group(2) or m.group(1))
        unit = m.group(3) if m.group(3) in _DOSE_UNITS else m.group(3).rstrip("s")
        if v is not None:
            out.append((v * _DOSE_UNITS[unit], _RATE.match(t, m.end()) is not None))
    return out


def _patch(q: Quantity, t: str, substance: str | None = None) -> Quantity:
    """A patch listing: patches, each of the strength it delivers an hour.

    A patch's strength is its delivery rate ("100ug/h", and "100ug" or "50mcu" alone on a
    fentanyl patch); ``dose_mg`` keeps it in mg an hour, noted: it is not the content (a
    100 µg/h matrix patch holds about 16.8 mg: the note says so, with the pack's total,
    for the rates in ``data/patch_content.tsv``). No patch delivers a milligram an hour:
    "10mg/hr Norspan" is 10 µg/h written loosely. The patch word wins over a count word
    ("12mcg/hr patches 10 pcs": ten patches)."""
    if not _PATCH.search(t) or q.unit_kind not in ("pill", "unknown", "patch") \
            or (q.unit_kind == "unknown" and q.dose_mg is None):
        return q
    rates = [v for v, rate in _doses(t) if rate]
    dose, notes = q.dose_mg, [q.note] if q.note and "pack count" not in q.note else []
    if rates or (dose is not None and dose < 1.0):
        dose = rates[0] if rates else dose
        if dose is not None and dose >= 1.0:
            notes.append(f"{dose:g} mg/h is no patch's rate: read as {dose:g} µg/h")
            dose /= 1000.0
        if dose is not None:
            notes.append(f"delivery rate {dose * 1000:g} µg/h: the patch's strength, "
                         "not its content")
            if (content := _patch_content_note(substance, dose, q.units)) is not None:
                notes.append(content)
    if q.units is None:
        notes.append("form stated, count not stated")
    return Quantity(q.units, "patch", None if dose is None else round(dose, 6),
                    q.confidence, _join(notes))


def _imprint_dose(q: Quantity, t: str, substance: str | None) -> Quantity:
    """An oxycodone pack with no stated dose takes the 30 mg its street name implies
    ("M30 blues x 10", "Roxy 30", "A215", "100 Perc 30s": pills of 30 mg), noted."""
    if substance != "oxycodone" or q.dose_mg is not None \
            or not (q.unit_kind == "pill" or q.note == "no quantity found"):
        return q
    m = _OXY30.search(t) if "30" in t or "215" in t or "blue" in t else None
    if m is None:
        return q
    name = " ".join(m.group(1).split())
    note = f"30 mg implied by the imprint '{name}' (oxycodone 30 mg)"
    if q.units is None:
        return Quantity(None, "pill", 30.0, 0.6, _join(["dose stated, pack count not stated",
                                                         note]))
    return Quantity(q.units, "pill", 30.0, q.confidence, _join([q.note, note] if q.note
                                                               else [note]))


def _read(t: str, substance: str | None) -> Quantity:
    """:func:`parse_quantity` of a title already unescaped and case-folded."""
    notes: list[str] = []

    # ---- doses (mg / µg) --------------------------------------------------------
    doses: list[tuple[float, int, int, bool]] = []  # (mg, start, end, ranged)
    has_digit = _DIGIT.search(t) is not None
    dose_hint = has_digit and ("g" in t or "mc" in t or "µ" in t or "μ" in t)
    for m in (_DOSE.finditer(t) if dose_hint else ()):
        a = _num(m.group(1))
        if a is None:
            continue
        b = _num(m.group(2)) if m.group(2) else None
        f = _DOSE_UNITS[m.group(3).rstrip("s") if m.group(3) not in _DOSE_UNITS else m.group(3)]
        # "x25 - 180mg": a count after a prefix "x" (not "10x 260-270mg"), a dash, then
        # the dose; not a range
        before = t[max(0, m.start() - 3):m.start()].rstrip()
        ranged = b is not None and b > a and not (
            before.endswith("x") and not before[-2:-1].isdigit())
        # "15 - 2mg": a count, a dash, then the dose; not a range
        v = (a + b) / 2 if ranged and b is not None else (b if b is not None else a)
        doses.append((v * f, m.start(), m.end(), ranged))
        if ranged and b is not None:  # both bounds kept in the note; dose_mg is the midpoint
            notes.append(f"dose range {a * f:g}-{b * f:g} mg")
    if doses and "eq" in t:
        doses = _before_equivalence(t, doses, notes)
    # ---- masses ---------------------------------------------------------------
    form_word = None
    cannabis = (substance or "").startswith("cannabis")
    for w in re.findall(r"[^\W\d_]+", t):  # letters: "comprimés" is one word
        if w in _FORM_WORDS and w != "count" and not (w in _BEANS and cannabis):
            # "100 count" names no form, "Magic Beans" is a cannabis strain
            form_word = _FORM_WORDS[w]
            break
    oxy30 = _OXY30.search(t) if substance in _OXY30_SUBSTANCES and (
        "30" in t or "215" in t or "blue" in t) else None
    if form_word is None and oxy30 is not None:
        form_word = "pill"  # "100 Perc 30s pressed": the street name is the pill word
    grams: list[tuple[float, str, int, int]] = []  # (grams, unit, start, end)
    minimum: tuple[float, str] | None = None  # a minimum order: (grams, unit)
    thousands: float | None = None  # "1k Xanax bars", "Bulk Listing 5k+": a count
    bare_kilo: bool | None = None  # searched once, when first needed (not once per mass)
    fractions: list[tuple[int, int]] = []
    for m in (_FRACTION.finditer(t) if "/" in t else ()):
        n, d = _num(m.group(1)), _num(m.group(2))
        if n and d:
            unit = m.group(3)
            grams.append((n / d * _MASS_UNITS.get(unit, 1.0), unit, m.start(), m.end()))
            fractions.append((m.start(), m.end()))
    for m in (_MASS.finditer(t) if has_digit else ()):
        if any(a <= m.start() < b for a, b in fractions):
            continue
        mass = _num(m.group(1))
        unit = m.group(2)
        if mass is None or (unit in ("k", "p") and mass > 10) \
                or (unit == "g" and _PER_UNIT.match(t, m.end())):
            continue
        if unit == "k":
            if t.startswith(("'s", "’s"), m.end()):
                continue  # "5 Green 2K's 240mg": a pill brand, not two kilos
            if doses or (form_word is not None and form_word != "piece") \
                    or t.startswith("+", m.end()):
                # "1k Xanax bars 2mg", "Bulk Listing 5k+": thousands of pills, not kilos
                thousands = thousands or mass * 1000
                continue
        elif unit in _GRAM_UNITS and re.fullmatch(r"\d{1,3}\.\d{3}", m.group(1)) and (
                bare_kilo := (_BARE_KILO.search(t) is not None if bare_kilo is None
                              else bare_kilo)):
            mass *= 1000  # "Cocaine 1.000g kilo": a dot separating thousands
            notes.append("dot read as a thousands separator (a kilo is named)")
        if _MIN_BEFORE.search(t, max(0, m.start() - 16), m.start()) \
                or _MIN_AFTER.match(t, m.end()):
            # "[Min 4oz]": the least a buyer may order; the price is per ounce
            minimum = minimum or (_MASS_UNITS[unit], unit)
            continue
        mass = _mass_range_low(t, m.start(), mass, notes)
        grams.append((mass * _MASS_UNITS[unit], unit, m.start(), m.end()))
    for m in (_SLANG_RE.finditer(t) if _SLANG_HINT.search(t) else ()):
        k = _num(m.group(1)) if m.group(1) else 1.0
        phrase = re.sub(r"\s+", " ", m.group(2))
        grams.append(((k or 1.0) * _SLANG_GRAMS[phrase], phrase, m.start(), m.end()))
    if doses and grams:
        doses = _not_restated(doses, grams, notes)
    # ---- counts ---------------------------------------------------------------
    count: float | None = None
    count_span: tuple[int, int] | None = None
    low: float | None = None  # the lowest tier of a count range ("10-100 pills")
    kind: str | None = None
    cm = _COUNT_FORM.search(t) if has_digit else None
    if cm and cm.group(2) == "bar" and substance == "cannabis_edible" \
            and (_num(cm.group(1)) or 0) > 1:
        cm = None  # "Korova 5150 Bar 500mg": a chocolate bar's name, not 5,150 bars
    if cm and cm.group(2) in _BEANS and cannabis:
        cm = None  # "10 Magic Beans seeds": a cannabis strain, not ten pills
    if cm and oxy30 is not None and _OXY30.match(t, cm.start(1)):
        cm = None  # "100 30s blues": the street name's number, not a count of blues
    xm = _COUNT_X.search(t) if has_digit and ("x" in t or "pcs" in t or "qty" in t) else None
    imprint_mg: float | None = None
    if xm and xm.group(1) and _OXY_IMPRINT.search(t, max(0, xm.start() - 4), xm.start()) \
            and (am := _COUNT_X.search(t, xm.end() - 1)) and am.group(2):
        # "OP 80 x 20 pressed": twenty pills of the OxyContin 80, not eighty
        imprint_mg, xm = _num(xm.group(1)), am
    if xm and xm.group(1) and t[:xm.start()].strip(" -[(#") \
            and (tm := _TRAILING_X.search(t)) and tm.start() > xm.start():
        xm = tm  # "Oxycodone 30mg M box 30 x 500": the imprint's number, then the count
    multipack: float | None = None  # "3 x 10 pills": three packs of the ten counted
    if cm and xm and xm.group(1) and xm.start() < cm.start() \
            and not t[xm.end():cm.start()].strip():
        multipack = _num(xm.group(1))
    elif cm and xm and xm.start() < cm.start() \
            and not cm.group(1) == (xm.group(1) or xm.group(2)):
        cm = None  # "50x2mg Xanax (GG249 Bars)": the x-count comes first
    if cm:
        count = _num(cm.group(1))
        count_span = cm.span()
        if (low := _range_low(t, cm.start(1), count, doses, notes)) is not None:
            count = low
        if count is not None and multipack is not None and multipack > 1:
            count *= multipack
            notes.append("packs of the count multiplied")
        kind = _FORM_WORDS[cm.group(2)]
        if kind == "count":  # "xanax bars 2mg 100 count", "Lyrica 50mg #21 count bottle"
            kind = form_word or _default_kind(substance)
        pm = _PACKS.search(t, cm.end()) if count and "x" in t[cm.end():] else None
        packs = _num(pm.group(1) or pm.group(2)) if pm else None
        if count is not None and packs is not None and packs > 1:
            # "Xanax 1mg 20 tab 100x BOX": a hundred boxes of the twenty counted (found by
            # a documentation audit: read as 20, the price per pill a hundred times high);
            # "150 Tablets 5 Boxes", with no "x", says how the count is packed
            count *= packs
            notes.append("packs of the count multiplied")
    if count is None:
        qm = _QTY.search(t) if has_digit and ("q" in t or "menge" in t or "anzahl" in t
                                              or t.lstrip()[:1] in "([") else None
        if qm:
            count, count_span = _num(qm.group(1) or qm.group(2)), qm.span()
        elif (bm := _bracket_count(t, doses)) is not None:
            count, count_span = _num(bm.group(1)), bm.span()
            notes.append("number in brackets beside a dose or a price each read as count")
        elif xm:
            count, count_span = _num(xm.group(1) or xm.group(2)), xm.span()
            if xm.group(1) and (low := _range_low(t, xm.start(1), count, doses,
                                                  notes)) is not None:
                count = low
        elif thousands:
            count = thousands
            notes.append("k read as thousands of pills")
        elif oxy30 is not None and (om := _OXY30_COUNT.search(t)):
            count, count_span = _num(om.group(1)), om.span()
        else:
            wm = _WORD_COUNT.search(t) if _WORD_HINT.search(t) else None
            if wm:
                count, count_span = float(_WORD_NUMBERS[wm.group(1)]), wm.span()
            else:
                lm = _LEADING.match(t)
                if lm and (doses or form_word) and not grams:
                    count, count_span = float(lm.group(1)), lm.span()
                    notes.append("leading number read as count")
                elif doses and not grams:
                    count = _count_before_dose(t, doses[0])
                    if count is not None:
                        notes.append("number before a pill name and dose read as count")
        if count is not None:
            kind = form_word or _default_kind(substance)
    if " of " in t and has_digit and (po := _PACKS_OF.search(t)):
        count, kind = _packs_of(po, count, kind or form_word or _default_kind(substance),
                                notes)
    if count is not None and count <= 0:
        count = None
    if kind == "pill" and substance == "lsd":
        kind = "blotter"
    elif kind == "pill" and substance in ("cannabis_edible", "cannabis_concentrate") \
            and not re.search(r"caps|capsules?|pills?|tabs?|tablets?", t):
        kind = "piece"  # "20x Platinum Kush Cartridges": a cartridge, a gummy is no pill

    # ---- dose choice: "90mg Klonopin 90x 2mg" -> 2; "45x 2mg" binds to the count ----
    dose = None
    if doses:
        vals = [d[0] for d in doses]
        dose = vals[0]
        if len(vals) > 1:
            if count:
                # one set lookup per dose: a pairwise scan is quadratic on a title that
                # repeats "10mg" thousands of times
                stated = {round(o, 6) for o in vals}
                for v in vals:
                    if v * count != v and round(v * count, 6) in stated:
                        dose = v
                        break
            if cm:
                after = [d for d in doses if d[1] >= cm.start()]
                dose = after[0][0] if after and dose == vals[0] else dose
        if any(d[3] for d in doses):
            notes.append("dose range: middle taken")

    if cm and count and dose is not None and "=" in t:
        dose = _pack_total(t, cm, count, doses, dose, notes)
    if dose is None and imprint_mg and substance == "oxycodone":
        dose = imprint_mg
        notes.append(f"{imprint_mg:g} mg implied by the OxyContin imprint")
    if kind == "pill" and substance == "other_psychedelic" \
            and ((dose is not None and dose < 1.0) or _BLOTTER_WORD.search(t)):
        kind = "blotter"  # "10000 pcs 1200 ug - 25 i,b,or c - NBOME blotters!", "800ug tabs"

    # ---- volume ---------------------------------------------------------------
    vol = None
    vm = _VOLUME.search(t) if has_digit and ("ml" in t or "cl" in t or "lit" in t) else None
    if vm:
        amount = _num(vm.group(1))
        if amount is not None:
            unit = vm.group(2)[:2] if vm.group(2).startswith("mi") else vm.group(2)
            vol = amount * {"ml": 1.0, "cl": 10.0, "l": 1000.0}.get(unit, 1.0)

    tiers = _TIERS.search(t) if has_digit and ("/" in t or "|" in t or " or " in t) else None
    if tiers:
        notes.append("tiered pack sizes: first tier taken")

    # ---- decide ---------------------------------------------------------------
    if count is not None and kind not in ("ml",):
        conf = 0.9 if cm else 0.75
        if "leading number read as count" in notes:
            conf = 0.6
        if (kind == "pill" or (kind == "piece" and substance == "cannabis_concentrate")) \
                and dose is None and grams and not cm:
            # "5 x 1g shatter", "(1x) 1/2g (500mg) CO2 Extract": packs of a weight
            near = min(grams, key=lambda x: _distance(count_span, x))
            gap = _gap(t, count_span, near)
            if gap is not None and _ADJACENT.fullmatch(gap) \
                    and (tablet := _tablet_strength(near[0], near[1], substance, t)):
                # "LORAZEPAM (tavor) 2,5 gr x 10": ten tablets of 2.5 mg, not 25 g
                return Quantity(count, "pill", round(tablet[0], 6), 0.6,
                                _join(notes + [tablet[1]]))
            if gap is not None and _ADJACENT.fullmatch(gap):
                # "10 x 1g", "1g x 10": a count of gram packs -> total weight
                return Quantity(round(count * near[0], 4), "gram", None, 0.6,
                                _join(notes + ["count x weight summed"]))
            if gap is not None and _JOINER.search(gap):
                # "1000x Red Defqon.1 & 10gr Cocaine": pills and a weight of two products
                return Quantity(None, "unknown", None, 0.0, _join(notes + [
                    "a count and a weight of different products: pack not read"]))
            # "(2)Gram", "50Grams ... 35$ a gram x50", "5g ... 3x Acetone Washed": the
            # count restates the weight or counts something else
            notes.append("count not beside the weight: the weight taken")
            count = None
        else:
            return Quantity(count, kind or "pill", dose,
                            0.5 if tiers or low is not None else conf, _join(notes))
    if grams:
        explicit = [g for g in grams if g[1] in _GRAM_UNITS]
        g = (explicit or grams)[0][0]
        conf = 0.9 if len({round(x[0], 1) for x in grams}) == 1 or explicit else 0.7
        if tiers:
            conf = 0.5
        elif len(explicit) > 1 and not any(_FREE_NEAR.search(t, max(0, x[2] - 8), x[3] + 10)
                                           for x in explicit) and all(
                _PLUS_GAP.fullmatch(t, a[3], b[2]) for a, b in pairwise(explicit)):
            # "1G jelly + 2G Moon + 10G primero": one bundle of the weights joined by "+"
            g = sum(x[0] for x in explicit)
            conf = 0.7
            notes.append("weights joined by + summed")
        return Quantity(round(g, 4), "gram", None, conf, _join(notes))
    if minimum is not None and count is None:
        return Quantity(round(minimum[0], 4), "gram", None, 0.4, _join(notes + [
            f"minimum order in {minimum[1]}: price read as per 1 {minimum[1]}"]))
    if vol is not None and (substance not in ("cannabis_concentrate",) or not doses):
        per_ml = dose if dose is not None else None
        return Quantity(vol, "ml", per_ml, 0.7, _join(notes + ["volume"]))
    if count is not None:
        return Quantity(count, kind or "pill", dose, 0.5 if low is not None else 0.6,
                        _join(notes))
    if dose is not None:
        powder = (not form_word) and bool(_POWDER_CUES.search(t))
        thc = any(_THC_DOSE.match(t, d[2]) for d in doses)
        if thc or (not powder and (
                substance in PHARMA_PILL_SUBSTANCES or substance in ("cannabis_edible", "mixed")
                or (form_word and form_word != "piece") or substance is None)):
            # "10mg THC" is a cannabinoid content, not grams of flower; a "mixed" combo of
            # "TRAMADOL 100MG AND RITALIN 10 MG" names tablet strengths of two products
            if substance == "mixed" and len({d[0] for d in doses}) > 1:
                return Quantity(None, "unknown", None, 0.0, _join(notes + [
                    "doses of several products: pack not read"]))
            if form_word == "pill" and substance == "cannabis_edible":
                form_word = "piece"  # "Korova 5150 Bar 500mg": a chocolate bar
            return Quantity(None, form_word or "unknown", dose, 0.6,
                            _join(notes + ["dose stated, pack count not stated"]))
        if dose < 1.0:
            # ".500mg ... DMT": no powder is sold by the fraction of a milligram
            return Quantity(None, "unknown", None, 0.0, _join(notes + [
                f"{dose:g} mg is no amount of powder: pack not read"]))
        return Quantity(round(dose / 1000.0, 6), "gram", None, 0.6,
                        _join(notes + ["mg read as an amount of powder"]))
    if form_word in ("seed", "patch"):
        return Quantity(None, form_word, None, 0.4, "form stated, count not stated")
    if "g" in t and has_digit and _PER_GRAM_PRICE.search(t):
        # "Pretty Good Cocaine 50e/g", "True OG - $12.50 per Gram": the price of one gram
        return Quantity(1.0, "gram", None, 0.4, "a price per gram and no pack: 1 g")
    sm = _BARE_SAMPLE.search(t) if "sample" in t and substance not in PHARMA_PILL_SUBSTANCES \
        else None
    sample = _num(sm.group(1)) if sm else None
    if sample:
        return Quantity(sample, "gram", None, 0.4, f"{sample:g} before 'sample' read as grams")
    return Quantity(None, "unknown", None, 0.0, "no quantity found")


_ADJACENT = re.compile(r"[\s()\[\]*x-]*")
_FREE_NEAR = re.compile(r"free|bonus|(?<![a-z])get(?![a-z])|gift")
_PLUS_GAP = re.compile(r"[^/|]{0,40}?\+[^/|]{0,40}")


def _distance(span: tuple[int, int] | None, mass: tuple[float, str, int, int]) -> int:
    if span is None:
        return 0
    return max(mass[2] - span[1], span[0] - mass[3], 0)


def _gap(t: str, span: tuple[int, int] | None,
         mass: tuple[float, str, int, int]) -> str | None:
    """The text between a count and a mass; None when they overlap or the count has no
    position (then they are not read as one pack of packs)."""
    if span is None or (span[0] < mass[3] and mass[2] < span[1]):
        return None
    return t[span[1]:mass[2]] if span[1] <= mass[2] else t[mass[3]:span[0]]


def _join(notes: list[str]) -> str:
    return "; ".join(dict.fromkeys(notes))
