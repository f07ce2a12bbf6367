"""The "classic" market layout: table-based pages, PHP-style URLs, USD/EUR "CUR 1.00" prices.

Modelled on the 2014-2017 generation of markets: every value sits in a two-column table
row (``<td class="label">Ships from</td><td>Germany</td>``), vendor pages are
``user.php?id=N``, feedback has its own paginated pages.
"""

from __future__ import annotations

from datetime import datetime
from html import escape as e

from darkmap.simulate.views import FeedbackView, ListingView, VendorView
from darkmap.simulate.world import Market

__all__ = ["LAYOUT", "captcha_page", "feedback_page", "index_page", "listing_page",
           "login_page", "paths", "vendor_page"]

LAYOUT = "classic"


class paths:  # noqa: N801 - a namespace of path builders
    """Where each page of this layout is saved (relative to ``pages/<market_id>``)."""

    @staticmethod
    def listing(ref: str) -> str:
        """The page of listing ``ref``."""
        return f"listing/{ref}.html"

    @staticmethod
    def vendor(uid: int) -> str:
        """The profile page of user ``uid``."""
        return f"user/{uid}.html"

    @staticmethod
    def feedback(uid: int, page: int) -> str:
        """Feedback page ``page`` about user ``uid``."""
        return f"feedback/{uid}_{page}.html"

    @staticmethod
    def index(slug: str, page: int) -> str:
        """Page ``page`` of category ``slug``."""
        return f"category/{slug}_{page}.html"

    login = "login.html"
    captcha = "captcha.html"


def _head(m: Market, title: str, url: str, ts: datetime) -> str:
    full = f"http://{m.onion}/{url}"
    return (f"<!DOCTYPE html>\n<!-- saved from url=({len(full):04d}){e(full)} -->\n"
            f"<html><head><meta charset=\"utf-8\"><title>{e(m.name)} :: {e(title)}</title>"
            "<link rel=\"stylesheet\" href=\"style.css\"></head>\n<body>\n"
            "<table id=\"header\" width=\"100%\"><tr>"
            f"<td class=\"logo\">{e(m.name.upper())}</td>"
            f"<td class=\"servertime\">Server time: {ts:%Y-%m-%d %H:%M:%S} UTC</td>"
            "</tr></table>\n<table id=\"nav\"><tr><td><a href=\"index.php\">Home</a></td>"
            "<td><a href=\"category.php\">Browse</a></td><td><a href=\"orders.php\">Orders</a>"
            "</td><td><a href=\"messages.php\">Messages</a></td></tr></table>\n")


_FOOT = "<table id=\"footer\"><tr><td>Copyright &copy; the market team. Stay safe.</td>" \
        "</tr></table>\n</body></html>\n"


def _row(label: str, value: str, cls: str = "") -> str:
    c = f" class=\"value {cls}\"" if cls else " class=\"value\""
    return f"<tr><td class=\"label\">{label}</td><td{c}>{value}</td></tr>\n"


def listing_page(m: Market, v: ListingView, ts: datetime) -> str:
    """A listing page."""
    crumbs = " &gt; ".join(f"<a href=\"category.php\">{e(c)}</a>" for c in v.category)
    return (_head(m, v.title, f"listing.php?id={v.ref}", ts)
            + f"<table class=\"listing\" data-listing-id=\"{e(v.ref)}\" cellpadding=\"4\">\n"
            f"<tr><th colspan=\"2\" class=\"ltitle\">{e(v.title)}</th></tr>\n"
            + _row("Listing ID", e(v.ref), "lid")
            + _row("Vendor", f"<a class=\"vendor\" href=\"user.php?id={v.vendor_uid}\">"
                             f"{e(v.handle)}</a>")
            + _row("Price", e(v.price), "price")
            + _row("Quantity", e(v.quantity))
            + _row("Ships from", e(v.ships_from))
            + _row("Ships to", e(", ".join(v.ships_to)))
            + _row("Category", crumbs, "catpath")
            + _row("Sold", f"{v.sales} since {v.created:%Y-%m-%d}", "sold")
            + _row("Feedback", f"<a href=\"feedback.php?id={v.vendor_uid}\">{v.feedback}"
                               " ratings</a>", "fbcount")
            + "</table>\n<h3>Description</h3>\n<table class=\"desc\"><tr><td>"
            f"<pre class=\"description\">{e(v.description)}</pre></td></tr></table>\n"
            + _recent(v) + _FOOT)


def _recent(v: ListingView) -> str:
    if not v.recent:
        return ""
    rows = "".join(f"<tr class=\"fb\"><td class=\"rating\">{f.rating}/5</td>"
                   f"<td class=\"comment\">{e(f.text)}</td><td class=\"buyer\">{e(f.buyer)}</td>"
                   f"<td class=\"date\">{f.day:%Y-%m-%d}</td></tr>\n" for f in v.recent)
    return ("<h3>Recent feedback</h3>\n<table class=\"lfeedback\" cellpadding=\"3\">\n"
            f"<tr><th>Rating</th><th>Comment</th><th>Buyer</th><th>Date</th></tr>\n{rows}"
            "</table>\n")


def vendor_page(m: Market, v: VendorView, listings: list[ListingView], ts: datetime) -> str:
    """A vendor profile: stats, about, terms, PGP key(s), the vendor's listings."""
    shown = f" ({v.feedback} ratings)" if v.feedback is not None else ""
    rating = f"{v.rating:.2f}/5{shown}" if v.rating is not None else "no ratings yet"
    parts = [_head(m, f"Profile of {v.handle}", f"user.php?id={v.uid}", ts),
             "<table class=\"profile\" cellpadding=\"4\">\n",
             f"<tr><th colspan=\"2\" class=\"uname\">{e(v.handle)}</th></tr>\n",
             _row("Member since", f"{v.joined:%Y-%m-%d}"),
             _row("Last seen", f"{v.last_seen:%Y-%m-%d}"),
             _row("Level", f"Level {v.level}"),
             _row("Sales", str(v.sales), "sales"),
             _row("Rating", e(rating), "rating"),
             _row("Ships from", e(v.ships_from)),
             "</table>\n<h3>About</h3>\n",
             f"<div class=\"about\"><pre>{e(v.profile)}</pre></div>\n"]
    parts.append(f"<h3>Terms</h3>\n<div class=\"terms\"><pre>{e(v.terms)}</pre></div>\n")
    parts.append("<h3>PGP public key</h3>\n")
    for i, key in enumerate(reversed(v.pgp)):
        label = "current key" if i == 0 else "old key (do not use)"
        parts.append(f"<p class=\"keylabel\">{label}</p><pre class=\"pgp\">{e(key)}</pre>\n")
    parts.append(f"<h3>Listings of {e(v.handle)}</h3>\n<table class=\"vlistings\">\n")
    for lv in listings:
        parts.append(f"<tr class=\"item\"><td><a href=\"listing.php?id={e(lv.ref)}\">"
                     f"{e(lv.title)}</a></td><td class=\"price\">{e(lv.price)}</td></tr>\n")
    parts.append(f"</table>\n<p><a href=\"feedback.php?id={v.uid}\">Feedback</a></p>\n{_FOOT}")
    return "".join(parts)


def feedback_page(m: Market, handle: str, uid: int, rows: list[FeedbackView], page: int,
                  pages: int, ts: datetime) -> str:
    """One page (50 rows) of a vendor's feedback."""
    parts = [_head(m, f"Feedback for {handle}", f"feedback.php?id={uid}&page={page}", ts),
             (f"<h2 class=\"fbhead\">Feedback for <a class=\"vendor\" href=\"user.php?id={uid}\">"
             f"{e(handle)}</a></h2>\n<p class=\"pager\">Page {page} of {pages}</p>\n"),
             ("<table class=\"feedback\" cellpadding=\"3\">\n<tr><th>Rating</th><th>Comment</th>"
             "<th>Item</th><th>Buyer</th><th>Price</th><th>Date</th></tr>\n")]
    for f in rows:
        parts.append(f"<tr class=\"fb\"><td class=\"rating\">{f.rating}/5</td>"
                     f"<td class=\"comment\">{e(f.text)}</td><td class=\"item\">"
                     f"<a href=\"listing.php?id={e(f.listing_ref)}\">{e(f.listing_title)}</a></td>"
                     f"<td class=\"buyer\">{e(f.buyer)}</td><td class=\"amount\">{e(f.amount)}</td>"
                     f"<td class=\"date\">{f.day:%Y-%m-%d}</td></tr>\n")
    parts.append("</table>\n" + _FOOT)
    return "".join(parts)


def index_page(m: Market, category: str, rows: list[ListingView], page: int, pages: int,
               ts: datetime) -> str:
    """A category page listing offers (title, vendor, price, origin)."""
    parts = [_head(m, category, f"category.php?c={category}&page={page}", ts),
             (f"<h2 class=\"cathead\">{e(category)}</h2>\n<p class=\"pager\">Page {page} of "
             f"{pages}</p>\n<table class=\"items\" cellpadding=\"3\">\n<tr><th>Item</th>"
             "<th>Vendor</th><th>Price</th><th>Ships from</th></tr>\n")]
    for v in rows:
        parts.append(f"<tr class=\"item\"><td class=\"title\"><a href=\"listing.php?id={e(v.ref)}"
                     f"\">{e(v.title)}</a></td><td class=\"vendor\"><a href=\"user.php?id="
                     f"{v.vendor_uid}\">{e(v.handle)}</a></td><td class=\"price\">{e(v.price)}"
                     f"</td><td class=\"from\">{e(v.ships_from)}</td></tr>\n")
    parts.append("</table>\n" + _FOOT)
    return "".join(parts)


def login_page(m: Market, ts: datetime) -> str:
    """The login form (no evidence)."""
    return (_head(m, "Login", "login.php", ts)
            + "<form class=\"login\" method=\"post\" action=\"login.php\"><table>"
            "<tr><td>Username</td><td><input name=\"username\"></td></tr>"
            "<tr><td>Password</td><td><input type=\"password\" name=\"password\"></td></tr>"
            "<tr><td>Captcha</td><td><img src=\"captcha.php\" alt=\"captcha\">"
            "<input name=\"captcha\"></td></tr></table><input type=\"submit\" value=\"Login\">"
            "</form>\n" + _FOOT)


def captcha_page(m: Market, ts: datetime) -> str:
    """The anti-bot CAPTCHA interstitial (no evidence)."""
    return (_head(m, "Security check", "captcha.php", ts)
            + "<div class=\"captcha-box\"><h2>Security check</h2><p>Please solve the captcha "
            "to continue.</p><img class=\"captcha\" src=\"captcha.php?r=1\" alt=\"captcha\">"
            "<form method=\"post\"><input name=\"captcha_code\"><input type=\"submit\" "
            "value=\"Continue\"></form></div>\n" + _FOOT)
