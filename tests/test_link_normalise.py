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


def test_one_transformation_makes_a_same_normalised_handle_two_do_not() -> None:
    from darkmap.resolve.normalise import same_normalised
    assert same_normalised("g3cko", "gecko")          # leetspeak
    assert same_normalised("Gecko99", "gecko")        # digits dropped
    assert same_normalised("xXFr0stK1ngXx", "FrostKing-official")
    assert same_normalised("frost.king420", "FrostKing")
    assert not same_normalised("g3cko", "Gecko99")    # 3 read as e, 99 dropped
    assert handle_key("g3cko") == handle_key("Gecko99")  # still one block
