"""The workbench's assets (issue #14): every script and style is served from this origin,
the vendored graph library is the registry's file (hash recorded in VENDORED.txt), no
template holds inline script, inline style or an outside URL, and templates escape."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from darkmap.store.workspace import Workspace
from darkmap.web.app import CSP, Workbench

WEB = Path(__file__).resolve().parents[1] / "src" / "darkmap" / "web"
OURS = sorted([*WEB.glob("templates/*.html"), *WEB.glob("static/*.js"),
               *WEB.glob("static/*.css"), *WEB.glob("static/*.svg")])


def test_vendored_cytoscape_is_the_registry_file() -> None:
    rows = [line.split() for line in (WEB / "static/vendor/VENDORED.txt").read_text(
        encoding="utf-8").splitlines() if line and not line.startswith("#")]
    assert rows, "VENDORED.txt lists nothing"
    for name, package, integrity, sha in rows:
        assert package.startswith("cytoscape@") and integrity.startswith("sha512-")
        assert hashlib.sha256((WEB / "static/vendor" / name).read_bytes()).hexdigest() == sha


def test_no_outside_origin_inline_script_or_style_in_our_files() -> None:
    assert OURS
    for path in OURS:
        text = path.read_text(encoding="utf-8")
        urls = [u for u in re.findall(r"https?://[^\s\"'<>)]+", text)
                if not u.startswith(("http://www.w3.org/", "http://graphml.graphdrawing.org/"))]
        assert not urls, f"{path.name}: outside URL {urls}"
        if path.suffix == ".html":
            assert not re.search(r"<script(?![^>]*\bsrc=)", text), f"{path.name}: inline script"
            assert "<style" not in text and " style=" not in text, f"{path.name}: inline style"
            assert not re.search(r"\son[a-z]+=", text), f"{path.name}: inline handler"


def test_csp_forbids_inline_and_outside_origins() -> None:
    parts = dict(p.strip().split(" ", 1) for p in CSP.split(";"))
    assert parts["default-src"] == "'none'"
    for directive in ("script-src", "style-src", "connect-src"):
        assert parts[directive] == "'self'", directive
    assert parts["frame-ancestors"] == "'none'" and parts["object-src"] == "'none'"


def test_templates_escape_market_text(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    try:
        wb = Workbench(ws)
        html = wb.env.get_template("error.html").render(
            me=None, role=None, csrf="", status_code=400,
            message='<script>alert(1)</script>"\u202e')
    finally:
        ws.close()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;\\u202e" in html
