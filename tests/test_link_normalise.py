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


def test_a_handle_of_repeated_decorations_is_keyed_in_linear_time() -> None:
    # one prefix stripped per round: slicing each round was quadratic (issue #18)
    assert handle_key("the" * 200_000 + "x") == handle_key("thex")
    assert handle_key("Bob" + "shop" * 200_000) == handle_key("Bob")
