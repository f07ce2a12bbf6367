"""The "modern" market layout: div/card markup, clean URLs, definition lists, star ratings.

Modelled on the 2018-2021 generation of markets: product cards, a vendor chip with trust
level and score, ``<dl class="specs">`` for shipping facts, review cards with ``<time>``.
"""

from __future__ import annotations

from datetime import datetime
from html import escape as e
from urllib.parse import quote

from darkmap.simulate.views import FeedbackView, ListingView, VendorView
from darkmap.simulate.world import Market

__all__ = ["LAYOUT", "captcha_page", "feedback_page", "index_page", "listing_page",
           "login_page", "paths", "vendor_page"]

LAYOUT = "modern"


class paths:  # noqa: N801 - a namespace of path builders
    """Where each page of this layout is saved (relative to ``pages/<market_id>``)."""

    @staticmethod
    def listing(ref: str) -> str:
        """The page of listing ``ref``."""
        return f"product/{ref}.html"

    @staticmethod
    def vendor(uid: int) -> str:
        """The profile page of user ``uid``."""
        return f"vendor/{uid}.html"

    @staticmethod
    def feedback(uid: int, page: int) -> str:
        """Feedback page ``page`` about user ``uid``."""
        return f"reviews/{uid}-{page}.html"

    @staticmethod
    def index(slug: str, page: int) -> str:
        """Page ``page`` of category ``slug``."""
        return f"browse/{slug}-{page}.html"

    login = "signin.html"
    captcha = "queue.html"


def _d(d: object) -> str:
    return f"{d:%b %d, %Y}"


def _head(m: Market, title: str, url: str, ts: datetime) -> str:
    full = f"http://{m.onion}{url}"
    return (f"<!DOCTYPE html>\n<!-- saved from url=({len(full):04d}){e(full)} -->\n"
            f"<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
            f"content=\"width=device-width\"><title>{e(title)} | {e(m.name)}</title></head>\n"
            "<body class=\"mk-body\">\n<header class=\"mk-header\">"
            f"<div class=\"brand\"><a href=\"/\">{e(m.name)}</a></div>"
            "<nav class=\"mk-nav\"><a href=\"/browse\">Browse</a><a href=\"/orders\">Orders</a>"
            "<a href=\"/wallet\">Wallet</a></nav>"
            f"<div class=\"clock\" data-ts=\"{int(ts.timestamp())}\">{ts:%d %b %Y %H:%M} UTC"
            "</div></header>\n<main class=\"container\">\n")


_FOOT = "</main>\n<footer class=\"mk-footer\"><div>Trade safe. Always use PGP.</div></footer>" \
        "\n</body></html>\n"


def _stars(r: int) -> str:
    return "\u2605" * r + "\u2606" * (5 - r)


def listing_page(m: Market, v: ListingView, ts: datetime) -> str:
    """A product page."""
    crumbs = "".join(f"<span class=\"crumb\">{e(c)}</span>" for c in v.category)
    paras = "".join(f"<p>{e(p)}</p>" for p in v.description.split("\n\n"))
    return (_head(m, v.title, f"/product/{v.ref}", ts)
            + f"<nav class=\"breadcrumb\">{crumbs}</nav>\n"
            f"<section class=\"product-card\" data-product=\"{e(v.ref)}\">\n"
            f"<h1 class=\"product-title\">{e(v.title)}</h1>\n"
            f"<div class=\"vendor-chip\"><a class=\"vendor-link\" href=\"/vendor/"
            f"{quote(v.handle)}\">{e(v.handle)}</a> <span class=\"reviews\">"
            f"{v.feedback} reviews</span></div>\n"
            f"<div class=\"price-box\"><span class=\"price\">{e(v.price)}</span></div>\n"
            "<dl class=\"specs\">"
            f"<dt>Product ID</dt><dd class=\"pid\">{e(v.ref)}</dd>"
            f"<dt>Amount</dt><dd>{e(v.quantity)}</dd>"
            f"<dt>Ships from</dt><dd class=\"from\">{e(v.ships_from)}</dd>"
            f"<dt>Ships to</dt><dd class=\"to\">{e(', '.join(v.ships_to))}</dd>"
            f"<dt>Listed</dt><dd><time datetime=\"{v.created:%Y-%m-%d}\">{_d(v.created)}</time>"
            "</dd></dl>\n"
            f"<div class=\"product-description\">{paras}</div>\n</section>\n"
            + _recent(v) + _FOOT)


def _card(f: FeedbackView, product: bool) -> str:
    link = (f" · <a class=\"product\" href=\"/product/{e(f.listing_ref)}\">"
            f"{e(f.listing_title)}</a>") if product else ""
    return (f"<div class=\"review-card\"><div class=\"stars\" data-rating=\"{f.rating}\">"
            f"{_stars(f.rating)}</div><p class=\"review-text\">{e(f.text)}</p>"
            f"<div class=\"review-meta\"><span class=\"buyer\">{e(f.buyer)}</span>{link} · "
            f"<time datetime=\"{f.day:%Y-%m-%d}\">{_d(f.day)}</time> · "
            f"<span class=\"amount\">{e(f.amount)}</span></div></div>\n")


def _recent(v: ListingView) -> str:
    if not v.recent:
        return ""
    return ("<section class=\"recent-reviews\"><h2>Latest reviews</h2>\n"
            + "".join(_card(f, product=False) for f in v.recent) + "</section>\n")


def vendor_page(m: Market, v: VendorView, listings: list[ListingView], ts: datetime) -> str:
    """A vendor profile: stat tiles, about and terms tabs, PGP textarea(s), product cards."""
    score = f"{v.rating:.2f}" if v.rating is not None else "new"
    parts = [_head(m, f"{v.handle} - vendor", f"/vendor/{quote(v.handle)}", ts),
             (f"<section class=\"vendor-profile\" data-vendor=\"{e(v.handle)}\">\n"
             f"<div class=\"vp-head\"><h1 class=\"vendor-name\">{e(v.handle)}</h1>"
             f"<span class=\"badge trust\">Trust level {v.level}</span></div>\n"
             "<div class=\"stats\">"
             f"<div class=\"stat\"><span class=\"k\">Joined</span><span class=\"v joined\">"
             f"{_d(v.joined)}</span></div>"
             f"<div class=\"stat\"><span class=\"k\">Last online</span><span class=\"v seen\">"
             f"{_d(v.last_seen)}</span></div>"
             f"<div class=\"stat\"><span class=\"k\">Score</span><span class=\"v score\">{score}"
             f"</span></div>"
             + (f"<div class=\"stat\"><span class=\"k\">Reviews</span><span class=\"v "
                f"nreviews\">{v.feedback}</span></div>" if v.feedback is not None else "")
             + f"<div class=\"stat\"><span class=\"k\">Ships from</span><span class=\"v from\">"
             f"{e(v.ships_from)}</span></div></div>\n"),
             "<div class=\"tab about\"><h2>About</h2>"
             + "".join(f"<p>{e(line)}</p>" for line in v.profile.split("\n")) + "</div>\n"]
    parts.append(f"<div class=\"tab terms\"><h2>Terms</h2><p>{e(v.terms)}</p></div>\n"
                 "<div class=\"tab pgp\"><h2>PGP</h2>")
    for key in reversed(v.pgp):
        parts.append(f"<textarea class=\"pgp-key\" readonly rows=\"12\">{e(key)}</textarea>")
    parts.append("</div>\n<div class=\"cards\">\n")
    for lv in listings:
        parts.append(f"<div class=\"product-card-mini\" data-product=\"{e(lv.ref)}\">"
                     f"<a class=\"pc-title\" href=\"/product/{e(lv.ref)}\">{e(lv.title)}</a>"
                     f"<span class=\"pc-price\">{e(lv.price)}</span></div>\n")
    parts.append("</div>\n</section>\n" + _FOOT)
    return "".join(parts)


def feedback_page(m: Market, handle: str, uid: int, rows: list[FeedbackView], page: int,
                  pages: int, ts: datetime) -> str:
    """One page of review cards about a vendor."""
    parts = [_head(m, f"Reviews of {handle}", f"/vendor/{quote(handle)}/reviews?p={page}", ts),
             (f"<section class=\"reviews\" data-vendor=\"{e(handle)}\">\n"
             f"<h1 class=\"reviews-title\">Reviews of <a class=\"vendor-link\" href=\"/vendor/"
             f"{quote(handle)}\">{e(handle)}</a></h1>\n"
             f"<div class=\"pager\">{page} / {pages}</div>\n")]
    parts.extend(_card(f, product=True) for f in rows)
    parts.append("</section>\n" + _FOOT)
    return "".join(parts)


def index_page(m: Market, category: str, rows: list[ListingView], page: int, pages: int,
               ts: datetime) -> str:
    """A browse page of product cards."""
    parts = [_head(m, f"{category} - page {page}", f"/browse/{quote(category)}?p={page}", ts),
             (f"<h1 class=\"browse-title\">{e(category)}</h1><div class=\"pager\">{page} / "
             f"{pages}</div>\n<div class=\"grid\">\n")]
    for v in rows:
        parts.append(f"<div class=\"product-card-mini\" data-product=\"{e(v.ref)}\">"
                     f"<a class=\"pc-title\" href=\"/product/{e(v.ref)}\">{e(v.title)}</a>"
                     f"<a class=\"pc-vendor\" href=\"/vendor/{quote(v.handle)}\">{e(v.handle)}</a>"
                     f"<span class=\"pc-price\">{e(v.price)}</span>"
                     f"<span class=\"pc-from\">{e(v.ships_from)}</span></div>\n")
    parts.append("</div>\n" + _FOOT)
    return "".join(parts)


def login_page(m: Market, ts: datetime) -> str:
    """The sign-in form (no evidence)."""
    return (_head(m, "Sign in", "/signin", ts)
            + "<div class=\"auth-card\"><h1>Sign in</h1><form method=\"post\">"
            "<input name=\"user\" placeholder=\"Username\"><input type=\"password\" name=\"pass\" "
            "placeholder=\"Password\"><img class=\"captcha\" src=\"/captcha.png\" alt=\"\">"
            "<input name=\"code\"><button>Sign in</button></form></div>\n" + _FOOT)


def captcha_page(m: Market, ts: datetime) -> str:
    """The DDoS-protection queue with a CAPTCHA (no evidence)."""
    return (_head(m, "DDoS protection", "/queue", ts)
            + "<div class=\"queue-card\"><h1>DDoS protection</h1><p>You are in the queue. "
            "Solve the captcha to enter the market.</p><img class=\"captcha\" "
            "src=\"/queue/captcha.png\" alt=\"\"><form method=\"post\"><input name=\"answer\">"
            "<button>Enter</button></form></div>\n" + _FOOT)
