"""FollowTheMoney model with darkmap's extension schemata (Listing, PgpKey, Capture...).

FtM resolves schemata through a process-wide ``Model.instance()``; :func:`load_model`
builds one model from the stock schema folder plus ``darkmap/model/schema`` and installs
it as that instance, so ``EntityProxy.from_dict`` reads darkmap entities back.
"""

from __future__ import annotations

import os
from functools import cache
from importlib import resources

from followthemoney.model import Model
from followthemoney.settings import MODEL_PATH

__all__ = ["EXTENSION_SCHEMATA", "load_model"]

EXTENSION_SCHEMATA = ("Capture", "Listing", "PgpKey", "Parcel", "ControlledBuy", "Seizure",
                      "Arrest", "CryptoTransfer")


def _yaml_files(folder: str) -> list[str]:
    return sorted(
        os.path.join(d, f) for d, _, files in os.walk(folder) for f in files
        if f.endswith((".yaml", ".yml"))
    )


@cache
def load_model() -> Model:
    """The stock FtM model plus darkmap's schemata, installed as ``Model.instance()``.

    Built once per process (cached); later calls return the same model.
    """
    ext_dir = str(resources.files("darkmap.model").joinpath("schema"))
    model = object.__new__(Model)
    model.path = MODEL_PATH
    model.schemata = {}
    model.properties = set()
    model.qnames = {}
    # Model.__init__ only walks one folder; load both, then resolve references once.
    for path in _yaml_files(MODEL_PATH) + _yaml_files(ext_dir):
        model._load(path)
    model.generate()
    Model._instance = model
    return model
