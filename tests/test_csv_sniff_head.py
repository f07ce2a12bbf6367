"""CSV sniffing reads a head lazily: the same lines, rows and scores as a full parse."""

from __future__ import annotations

import csv
import io

from conftest import DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from darkmap.importers.csv_mapped import _SNIFF_ROWS, _head_lines, _HeadRows, best_mapping
from darkmap.plugins import SourceFile

_HEAD = 64 * 1024


def _text(head: bytes, enc: str) -> str:
    text = head.decode(enc, "replace")
    if len(head) >= _HEAD and "\n" in text:
        text = text[:text.rfind("\n")]  # the row torn by a full head is dropped
    return text


def _rows(head: bytes, enc: str, dialect: dict) -> list[list[str]]:
    try:
        reader = csv.reader(io.StringIO(_text(head, enc), newline=""), **dialect)
        return [r for _, r in zip(range(_SNIFF_ROWS), reader, strict=False) if r]
    except csv.Error:
        return []


_PIECES = st.sampled_from([b"a", b"\n", b"\r", b"\r\n", b",", b'"', b" ", "\u00e9".encode(),
                           "\u20ac".encode(), b"\xff", b"\xe2\x82", b"x" * 3000, b"\x00"])


@given(st.lists(_PIECES, max_size=60), st.sampled_from(["utf-8", "latin-1", "utf-16", "cp1252"]),
       st.booleans())
@settings(max_examples=300, deadline=None)
def test_lazy_lines_equal_the_whole_decoded_text(parts: list[bytes], enc: str,
                                                 full: bool) -> None:
    head = b"".join(parts)
    if full and head:  # a head of exactly 64 KiB, cut at its last line break
        head = (head * (_HEAD // len(head) + 1))[:_HEAD]
    try:
        want = list(io.StringIO(_text(head, enc), newline=""))
    except UnicodeError:
        return
    assert list(_head_lines(head, enc)) == want


@given(st.lists(_PIECES, max_size=80), st.booleans())
@settings(max_examples=200, deadline=None)
def test_lazy_rows_equal_a_full_parse(parts: list[bytes], skip: bool) -> None:
    head = b"".join(parts)
    dialect = {"delimiter": ",", "quotechar": '"', "skipinitialspace": skip,
               "escapechar": None, "doublequote": True}
    lazy = _HeadRows(head, "utf-8", dialect)
    first = lazy.upto(1)[:1]
    want = _rows(head, "utf-8", dialect)
    if want:
        assert first == want[:1]
    assert lazy.rows() == want


def test_real_files_get_the_mappings_they_always_got() -> None:
    seen = {}
    for path in sorted(DATA.rglob("*")):
        if not path.is_file() or path.name.startswith(("LICENSE", "README")):
            continue
        with open(path, "rb") as fh:
            head = fh.read(_HEAD)
        m, score = best_mapping(SourceFile(path=path, source=str(path), sha256="", head=head))
        seen[str(path.relative_to(DATA))] = (m.name if m else None, score)
    assert seen["listings/hansa-2016-12.csv"] == ("hansa-2016-12", 0.9)
    assert all(v[0] is None or v[1] < 0.5 for k, v in seen.items() if k.startswith("pages/"))
    agora = {v for k, v in seen.items() if k.startswith("listings/agora-2014/")}
    assert agora and all(name == "agora-2014" and s >= 0.85 for name, s in agora)
