"""A hostile market's answers to the crawler (found by fuzzing, 2026-12-06): each used to
raise out of the fetch and stop the crawl for good (its resume met the same answer), to
expand a compression bomb in memory, to call a whole page cut short, or to wait on a body
sent a byte at a time without end. A real HTTP server on loopback sends them; the
bodies are real market pages."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from conftest import DATA

from darkmap.collect.crawl import retry_after
from darkmap.collect.crawl_fetch import Fetcher, decode_body, location_problem
from darkmap.collect.crawl_plan import load_plan, plan_dir

PAGE = next(p for p in sorted((DATA / "pages" / "empire").rglob("*")) if p.is_file()
            ).read_bytes()


@contextmanager
def serving(answers: list[bytes], drip: float = 0.0) -> Iterator[str]:
    """A loopback server answering each connection with the next of ``answers`` (raw
    HTTP bytes; ``drip``: seconds between the bytes of the body, after the headers)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    stop = threading.Event()

    def run() -> None:
        for answer in answers:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                head, _, body = answer.partition(b"\r\n\r\n")
                try:
                    conn.sendall(head + b"\r\n\r\n")
                    if not drip:
                        conn.sendall(body)
                    for k in range(len(body) if drip else 0):
                        if stop.is_set():
                            break
                        conn.sendall(body[k:k + 1])
                        time.sleep(drip)
                except OSError:
                    pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{port}/page"
    finally:
        stop.set()
        srv.close()


def _answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status}\r\n{head}Connection: close\r\n\r\n".encode() + body


def test_a_body_that_is_not_its_encoding_fails_that_url_only() -> None:
    with serving([_answer(PAGE[:5000], "Content-Encoding: gzip")]) as url:
        got = Fetcher(None, timeout=5).fetch(url)
    assert got.outcome == "bad_encoding" and "gzip" in (got.error or "")
    assert got.body == PAGE[:5000] and not got.decoded  # kept as it was sent


def test_a_compression_bomb_stops_at_the_body_limit() -> None:
    bomb = gzip.compress(gzip.compress(b"\0" * (64 << 20)))
    assert len(bomb) < 100_000
    with serving([_answer(bomb, "Content-Encoding: gzip, gzip")]) as url:
        got = Fetcher(None, timeout=5, max_body=1 << 20).fetch(url)
    assert got.outcome == "too_big" and "once decoded" in (got.error or "")
    assert len(got.body) == len(bomb)


def test_an_encoded_page_with_its_encoded_length_is_whole() -> None:
    """A gzip body with its Content-Length (of the gzip bytes) was called cut short: the
    length was compared with the decoded body, and the page never captured."""
    packed = gzip.compress(PAGE)
    with serving([_answer(packed, "Content-Encoding: gzip",
                          f"Content-Length: {len(packed)}")]) as url:
        got = Fetcher(None, timeout=5).fetch(url)
    assert got.outcome == "ok" and got.body == PAGE and got.decoded


def test_a_cookie_no_request_can_carry_is_not_kept() -> None:
    answers = [_answer(PAGE[:100], "Set-Cookie: s=\xe9t\xe9; Path=/".encode("latin-1").decode(
        "latin-1"), "Set-Cookie: ok=1"), _answer(PAGE[:100])]
    with serving(answers) as url:
        f = Fetcher(None, timeout=5)
        first, second = f.fetch(url), f.fetch(url)
    assert (first.outcome, second.outcome) == ("ok", "ok")
    assert f.cookies == {"ok": "1"}
    assert dict(second.request_headers).get("cookie") == "ok=1"


def test_a_body_sent_a_byte_at_a_time_ends_at_the_deadline() -> None:
    with serving([_answer(PAGE[:2000], "Content-Length: 2000")], drip=0.05) as url:
        t0 = time.monotonic()
        got = Fetcher(None, timeout=5, deadline=0.5).fetch(url)
        took = time.monotonic() - t0
    assert got.outcome == "timeout" and "not complete after 0.5 s" in (got.error or "")
    assert 0 < len(got.body) < 2000 and took < 5


@pytest.mark.parametrize(("encoding", "pack"), [
    ("gzip", gzip.compress), ("deflate", zlib.compress),
    ("deflate", lambda b: (lambda c: c.compress(b) + c.flush())(zlib.compressobj(wbits=-15))),
    ("x-gzip, identity", gzip.compress),
    ("gzip", lambda b: gzip.compress(b[:100]) + gzip.compress(b[100:])),
])
def test_decode_body_reads_what_servers_send(encoding: str, pack) -> None:  # type: ignore[no-untyped-def]
    assert decode_body(pack(PAGE), encoding, 1 << 24) == (PAGE, None)


def test_decode_body_refuses_what_it_does_not_read() -> None:
    assert decode_body(PAGE, "br", 1 << 24)[1] == ("bad_encoding", "Content-Encoding 'br' not read")
    assert decode_body(gzip.compress(PAGE)[:-20], "gzip", 1 << 24)[1][0] == "bad_encoding"
    assert decode_body(PAGE, "gzip, gzip, gzip", 1 << 24)[1][0] == "bad_encoding"


@pytest.mark.parametrize(("value", "seconds"), [
    ("30", 30.0), (" 5 ", 5.0), ("99999", 600.0), ("\u00b2", None), ("\u0663", None),
    ("-1", None), ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("", None), (None, None)])
def test_retry_after_reads_whole_seconds_only(value: str | None, seconds: float | None) -> None:
    assert retry_after(value) == seconds


def test_a_link_that_is_no_url_is_not_followed() -> None:
    plan = load_plan(plan_dir() / "sim_classic.yaml")
    host = "x" * 56 + ".onion"
    page = f"http://{host}/index"
    for raw in ("http://[::1/x", "http://[::1", "//[/", "http://[x"):
        assert plan.resolve(raw, page, [host], host) is None, raw
    assert plan.resolve("/listing/1", page, [host], host) is not None


@pytest.mark.parametrize(("location", "why"), [
    (b"http://[::1/x", "InvalidURL: Invalid port: ':1'"),
    (b"http://x.onion:abc/", "InvalidURL: Invalid port: 'abc'"),
    (b"\x7f\x7f", ("InvalidURL: Invalid non-printable ASCII character in URL, '\\x7f' "
                  "at position 0.")),
    (b"//[", "ValueError: Invalid IPv6 URL"),
    (b"http://h.onion:99999999/", "ValueError: Port out of range 0-65535")])
def test_a_redirect_to_no_url_is_its_own_outcome(location: bytes, why: str) -> None:
    """The client raised on such a Location (while making a request it never sends): the
    answer was lost and called ``connect``. Now it is kept as received, ``bad_redirect``."""
    answer = _answer(b"moved", "Location: " + location.decode("latin-1"), status="302 Found")
    with serving([answer]) as url:
        got = Fetcher(None, timeout=5).fetch(url)
    assert (got.outcome, got.status, got.body) == ("bad_redirect", 302, b"moved")
    assert got.header("Location") == location.decode("latin-1")
    assert got.error == f"Location {location.decode('latin-1')!r} is no URL: {why}"


@pytest.mark.parametrize("line", ["X-Bad: a\x00b", "Not a header line"])
def test_a_header_line_the_parser_refuses_is_a_bad_response(line: str) -> None:
    """It counted as ``connect``: retried as a network failure before the URL failed."""
    with serving([_answer(PAGE[:100], line)]) as url:
        got = Fetcher(None, timeout=5).fetch(url)
    assert (got.outcome, got.status) == ("bad_response", None)
    assert (got.error or "").startswith("RemoteProtocolError: illegal header line")
    with serving([b""]) as url:      # no answer at all: still the network's
        assert Fetcher(None, timeout=5).fetch(url).outcome == "connect"


def test_repeated_headers_are_kept_line_by_line() -> None:
    """Two ``Set-Cookie`` lines were joined into one with a comma (what a WARC then held
    was not what the market sent); each line is kept, in order."""
    answer = _answer(PAGE[:200], "Set-Cookie: a=1; Path=/", "X-Note: first",
                     "Set-Cookie: b=2; HttpOnly", "X-Note: second")
    with serving([answer]) as url:
        got = Fetcher(None, timeout=5).fetch(url)
    assert [(k.lower(), v) for k, v in got.headers] == [
        ("set-cookie", "a=1; Path=/"), ("x-note", "first"), ("set-cookie", "b=2; HttpOnly"),
        ("x-note", "second"), ("connection", "close")]


def test_a_redirect_keeps_its_headers_as_received() -> None:
    answer = _answer(b"", "Location: /listing/2", "Set-Cookie: s=1", status="301 Moved")
    with serving([answer]) as url:
        f = Fetcher(None, timeout=5)
        got = f.fetch(url)
    assert (got.outcome, got.status, got.error) == ("redirect", 301, None)
    assert [k.lower() for k, _ in got.headers] == ["location", "set-cookie", "connection"]
    assert got.header("Location") == "/listing/2" and f.cookies == {"s": "1"}
    assert location_problem("/listing/2", url) is None
