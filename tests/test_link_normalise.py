"""Handle normalisation used for blocking and the handle signal."""

from darkmap.resolve.normalise import handle_key


def test_decorated_variants_share_a_key() -> None:
    base = handle_key("FrostKing")
    for v in ("xXFr0stK1ngXx", "frostking_official", "TheRealFrostKing", "frost.king420",
              "FROSTKING-shop", "fr0stk1ng2"):
        assert handle_key(v) == base, v


def test_distinct_names_keep_distinct_keys() -> None:
    assert handle_key("GreenDoctor") != handle_key("GreenTiger")
    assert handle_key("") == ""
    assert handle_key("\u0000<script>") == "script"
