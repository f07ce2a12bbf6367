"""Value types shared by every stage: the records importers yield, identifiers, Bitcoin and
OpenPGP wire formats, text encodings, countries and the FollowTheMoney schema."""

__all__: list[str] = []
