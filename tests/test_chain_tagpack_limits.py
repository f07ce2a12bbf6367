"""Hostile TagPacks (issue 18): alias bombs refused, deep nesting refused before libyaml
can crash, oversized files refused, long fields cut with the cut recorded, Python tags
never constructed; ordinary anchors and merge keys still read."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkmap.collect.ingest import ingest
from darkmap.importers.tagpack import MAX_TAGPACK_NODES, read_tagpack
from darkmap.store.workspace import Workspace

HEAD = "title: t\ncreator: c\n"
GENESIS = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
HOT = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"


def _bomb(levels: int) -> str:
    lines = [HEAD.rstrip("\n"), "a0: &a0 [" + ",".join(['"lol"'] * 9) + "]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join([*lines, "tags:", f"  - address: *a{levels - 1}",
                      f"    label: *a{levels - 1}"]) + "\n"


def _only_problem(text: str) -> tuple[str, str | None, str]:
    header, tags, problems = read_tagpack(text, "x.yaml")
    assert not tags and len(problems) == 1
    return problems[0].field, problems[0].limit, problems[0].reason


@pytest.mark.parametrize("levels", [8, 9, 12])
def test_alias_bomb_is_refused_with_its_limit(levels: int) -> None:
    field, limit, reason = _only_problem(_bomb(levels))
    assert (field, limit) == ("yaml", "yaml_aliases") and "alias bomb" in reason


def test_recursive_alias_is_refused() -> None:
    _, limit, _ = _only_problem(HEAD + "loop: &a [*a]\ntags: []\n")
    assert limit == "yaml_aliases"


@pytest.mark.parametrize("body", [
    "tags:\n  - address: " + "[" * 100_000 + "]" * 100_000 + "\n    label: deep\n",
    "tags:\n  - " + "- " * 100_000 + "x\n",
    "tags:\n" + "".join(" " * i + f"k{i}:\n" for i in range(0, 3000, 2)) + " " * 3000 + "v\n",
])
def test_deep_nesting_is_refused_not_crashed(body: str) -> None:
    field, limit, reason = _only_problem(HEAD + body)
    assert (field, limit) == ("yaml", "nesting_depth") and "deeper than 512" in reason


def test_brackets_in_quoted_labels_are_not_nesting() -> None:
    label = "[" * 2000
    _, tags, problems = read_tagpack(HEAD + f"tags:\n  - address: {GENESIS}\n"
                                     f"    label: '{label}'\n")
    assert not problems and tags[0]["label"] == label[:300]


def test_anchors_and_merge_keys_still_work() -> None:
    text = (HEAD + "common: &c {category: exchange, source: subpoena & return}\n"
            f"tags:\n  - <<: *c\n    address: {GENESIS}\n    label: A & B\n"
            f"  - <<: *c\n    address: {HOT}\n    label: hot\n")
    _, tags, problems = read_tagpack(text)
    assert not problems
    assert [(t["label"], t["category"], t["source"]) for t in tags] == [
        ("A & B", "exchange", "subpoena & return"), ("hot", "exchange", "subpoena & return")]


@pytest.mark.parametrize("value", [
    "2022-02-30", "2021-13-01", "!!timestamp soon", "!!bool maybe", "9" * 5000,
    "!!int 0x", "!!float 1e", "2022-02-30T25:61:00Z"])
def test_a_typed_value_that_does_not_construct_stays_text(value: str) -> None:
    """One scalar YAML types but cannot build (found by fuzzing: `lastmod: 2022-02-30`, a
    tag's `source: 2021-13-01`, a 5,000-digit confidence) raised out of the safe loader,
    and the whole TagPack was lost (`importer failed: day is out of range for month`).
    Now it is the text it is, and every tag stands."""
    text = (HEAD + f"lastmod: {value}\n"
            f"tags:\n  - address: {GENESIS}\n    label: one\n    source: {value}\n"
            f"    confidence: {value}\n  - address: {HOT}\n    label: two\n")
    _, tags, problems = read_tagpack(text)
    assert not problems
    assert [t["label"] for t in tags] == ["one", "two"]
    assert isinstance(tags[0]["source"], str)
    assert tags[0]["source"] == value.split()[-1][:500]


def test_typed_values_that_construct_are_typed_as_before() -> None:
    header, tags, problems = read_tagpack(
        HEAD + f"lastmod: 2022-02-28\ntags:\n  - address: {GENESIS}\n    label: x\n"
               "    confidence: 80\n")
    assert not problems and str(header["lastmod"]) == "2022-02-28"
    assert not isinstance(header["lastmod"], str)


def test_python_tags_are_never_constructed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = HEAD + f"tags:\n  - address: !!python/object/apply:os.system ['touch {marker}']\n" \
                  "    label: pwn\n"
    field, limit, reason = _only_problem(text)
    assert (field, limit) == ("yaml", None) and "\n" not in reason
    assert not marker.exists()


def test_containers_are_shown_bounded() -> None:
    text = HEAD + f"category: [{', '.join(map(str, range(100_000)))}]\n" \
                  f"tags:\n  - address: [{GENESIS}]\n    label: one\n" \
                  "  - address: [" + ", ".join(["x"] * 10_000) + "]\n    label: two\n"
    _, tags, problems = read_tagpack(text)
    assert [t["address"] for t in tags] == [GENESIS]
    assert tags[0]["category"] is not None and len(tags[0]["category"]) <= 500
    assert [p.field for p in problems] == ["address"] and len(problems[0].reason) < 200


def test_too_many_lines_is_refused_before_parsing(ws: Workspace, tmp_path: Path) -> None:
    tag = f"  - address: {GENESIS}\n    label: t\n"
    pack = tmp_path / "big.yaml"
    pack.write_text(HEAD + "tags:\n" + tag * (MAX_TAGPACK_NODES // 2 + 1))
    summary = ingest(ws, [pack])
    f = summary.files[0]
    assert (f.importer, f.read, f.stored, f.quarantined) == ("tagpack", 1, 0, 1)
    assert summary.limits() == {"file_bytes": 1}
    assert "split it" in ws.con.execute("SELECT reason FROM quarantine").fetchone()[0]


def test_long_label_is_cut_and_the_cut_recorded(ws: Workspace, tmp_path: Path) -> None:
    pack = tmp_path / "exchanges.yaml"
    pack.write_text(HEAD + f"tags:\n  - address: {GENESIS}\n    label: {'L' * (10 << 20)}\n"
                           f"  - address: {HOT}\n    label: short\n    source: {'s' * 600}\n")
    summary = ingest(ws, [pack])
    f = summary.files[0]
    assert (f.read, f.stored, f.quarantined, f.fields_cut) == (2, 2, 0, 2)
    labels = ws.con.execute("SELECT length(label), length(source) FROM btc_tags "
                            "ORDER BY address").fetchall()
    assert labels == [(300, None), (5, 500)]
    cuts = ws.con.execute("SELECT field, original_chars, kept_chars FROM field_cuts "
                          "ORDER BY field").fetchall()
    assert cuts == [("label", 10 << 20, 300), ("source", 600, 500)]


def test_alias_bomb_through_ingest_names_the_limit(ws: Workspace, tmp_path: Path) -> None:
    pack = tmp_path / "bomb.yaml"
    pack.write_text(_bomb(9))
    summary = ingest(ws, [pack])
    f = summary.files[0]
    assert (f.importer, f.read, f.stored, f.quarantined) == ("tagpack", 1, 0, 1)
    assert summary.limits() == {"yaml_aliases": 1}


def test_repeated_tags_keys_keep_every_tag() -> None:
    """Two top-level `tags:` lists (found by fuzzing): the safe loader kept the last, and
    the first list's tags were dropped without a word. Both lists are read, in order."""
    text = (HEAD + f"tags:\n  - address: {GENESIS}\n    label: one\n"
            "category: exchange\n"
            f"tags:\n  - address: {HOT}\n    label: two\n")
    header, tags, problems = read_tagpack(text)
    assert not problems and header["category"] == "exchange"
    assert [(t["address"], t["label"]) for t in tags] == [(GENESIS, "one"), (HOT, "two")]


def test_a_label_yaml_types_as_a_number_or_date_is_its_text() -> None:
    """`label: 12345` is a label YAML typed as an integer (money audit, L2: the tag was
    refused as "missing label"); a mapping or a list is still no label, and says so."""
    text = (HEAD + f"tags:\n  - address: {GENESIS}\n    label: 12345\n"
            f"  - address: {HOT}\n    label: 2.5\n  - address: {GENESIS}\n    label: 2019-05-01\n"
            f"  - address: {HOT}\n    label: [a, b]\n  - address: {HOT}\n    label: true\n"
            f"  - address: {HOT}\n")
    _, tags, problems = read_tagpack(text, "t.yaml")
    assert [t["label"] for t in tags] == ["12345", "2.5", "2019-05-01"]
    assert [(p.locator, p.field, p.reason) for p in problems] == [
        ("t.yaml#tag 3", "label", "not a text label: \"['a', 'b']\""),
        ("t.yaml#tag 4", "label", "not a text label: 'True'"),
        ("t.yaml#tag 5", "label", "missing label")]


def test_a_number_label_keeps_its_source_text() -> None:
    """Review L1: the label was `str()` of what YAML 1.1 read, so `0777` (octal) was stored
    as "511", `1.10` as "1.1", `12:30` (base 60) as "750". The text as written is kept,
    in the header's default label too; a quoted label is unchanged."""
    text = (HEAD + "label: 0x1F\n"
            f"tags:\n  - address: {GENESIS}\n    label: 0777\n"
            f"  - address: {HOT}\n    label: 1.10\n  - address: {GENESIS}\n    label: 12:30\n"
            f"  - address: {HOT}\n    label: 1_000\n  - address: {GENESIS}\n"
            f"  - address: {HOT}\n    label: '007'\n  - address: {GENESIS}\n    label: 1e3\n")
    _, tags, problems = read_tagpack(text, "t.yaml")
    assert not problems
    assert [t["label"] for t in tags] == ["0777", "1.10", "12:30", "1_000", "0x1F", "007",
                                          "1e3"]
