"""The controlled drug vocabulary: classes, substances, and what each substance is.

Every listing is assigned one ``drug_class`` and one ``substance`` from these lists.
The substance decides the class (``SUBSTANCE_CLASS``); ``mixed`` takes the class of
its most harmful component and is resolved by the classifier.
"""

from __future__ import annotations

__all__ = [
    "DRUG_CLASSES",
    "FENTANYL_SUBSTANCES",
    "OPIOID_PILL_SUBSTANCES",
    "PHARMA_PILL_SUBSTANCES",
    "POWDER_SUBSTANCES",
    "SUBSTANCES",
    "SUBSTANCE_CLASS",
    "class_of",
    "most_harmful_class",
]

DRUG_CLASSES: tuple[str, ...] = (
    "opioid", "stimulant", "empathogen", "cannabis", "psychedelic", "dissociative",
    "sedative", "other_medicine", "non_drug",
)

SUBSTANCE_CLASS: dict[str, str] = {
    **dict.fromkeys((
        "fentanyl", "fentanyl_analogue", "nitazene", "heroin", "oxycodone", "hydrocodone",
        "morphine", "codeine", "tramadol", "methadone", "buprenorphine", "other_opioid",
    ), "opioid"),
    **dict.fromkeys((
        "cocaine", "crack", "methamphetamine", "amphetamine", "methylphenidate", "cathinone",
        "other_stimulant",
    ), "stimulant"),
    "mdma": "empathogen", "mda": "empathogen",
    **dict.fromkeys((
        "cannabis_flower", "cannabis_resin", "cannabis_concentrate", "cannabis_edible",
        "cannabis_seed", "synthetic_cannabinoid",
    ), "cannabis"),
    **dict.fromkeys(("lsd", "psilocybin", "dmt", "mescaline", "2c", "other_psychedelic"),
                    "psychedelic"),
    **dict.fromkeys(("ketamine", "pcp", "dxm", "other_dissociative"), "dissociative"),
    **dict.fromkeys((
        "alprazolam", "diazepam", "clonazepam", "etizolam", "other_benzodiazepine", "ghb",
        "zdrug", "other_sedative",
    ), "sedative"),
    **dict.fromkeys(("steroid", "erectile", "modafinil", "other_medicine"), "other_medicine"),
    "non_drug": "non_drug",
    "mixed": "mixed",
}

SUBSTANCES: tuple[str, ...] = tuple(SUBSTANCE_CLASS)

FENTANYL_SUBSTANCES = frozenset({"fentanyl", "fentanyl_analogue", "nitazene"})

OPIOID_PILL_SUBSTANCES = frozenset({
    "oxycodone", "hydrocodone", "morphine", "codeine", "tramadol", "methadone",
    "buprenorphine", "other_opioid", "fentanyl"})

# Substances sold as branded pharmaceutical tablets: a lone "30mg" is a dose per pill,
# and a pressed imitation of them is a counterfeit pill.
PHARMA_PILL_SUBSTANCES = frozenset(OPIOID_PILL_SUBSTANCES | {
    "amphetamine", "methylphenidate", "alprazolam", "diazepam", "clonazepam", "etizolam",
    "other_benzodiazepine", "zdrug", "other_sedative", "steroid", "erectile", "modafinil",
    "other_medicine", "other_stimulant"})

# Sold by weight: a lone "250mg" is an amount of powder, not a dose.
POWDER_SUBSTANCES = frozenset({
    "fentanyl_analogue", "nitazene", "heroin", "cocaine", "crack", "methamphetamine",
    "cathinone", "mdma", "mda", "ketamine", "pcp", "dmt", "mescaline", "2c",
    "other_psychedelic", "other_dissociative", "ghb", "cannabis_flower", "cannabis_resin",
    "cannabis_concentrate", "synthetic_cannabinoid", "psilocybin"})

_HARM_ORDER = ("opioid", "sedative", "stimulant", "dissociative", "empathogen",
               "psychedelic", "cannabis", "other_medicine", "non_drug")


def class_of(substance: str) -> str:
    """The drug class of a substance (``non_drug`` for anything unknown)."""
    return SUBSTANCE_CLASS.get(substance, "non_drug")


def most_harmful_class(classes: list[str]) -> str:
    """Of several classes, the one that weighs most for harm (opioid first)."""
    for c in _HARM_ORDER:
        if c in classes:
            return c
    return "non_drug"
