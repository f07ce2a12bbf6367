"""The tabular forms investigators receive: a scraped listings CSV and a seized database.

``write_csv`` writes ``listings/<market_id>.csv`` (header row, one row per listing as a
scraper saw it). ``write_sqldump`` writes ``seized/<market_id>.sql`` in mysqldump text
format (CREATE TABLE, LOCK TABLES, extended INSERTs with MySQL string escaping) with the
market's users, vendor profiles (PGP keys, payout addresses, contacts), listings, orders
(with the escrow deposit address and payment txid) and feedback.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from darkmap.simulate import style
from darkmap.simulate.rand import stream
from darkmap.simulate.views import (
    feedback_views,
    listing_view,
    price_in_currency,
    vendor_view,
)
from darkmap.simulate.world import Market, World, day_date, usd_per_btc

__all__ = ["CSV_HEADER", "mysql_literal", "write_csv", "write_sqldump"]

CSV_HEADER = ("scraped_at", "market", "listing_id", "title", "vendor", "price", "currency",
              "category", "ships_from", "ships_to", "feedback_count")
_ROWS_PER_INSERT = 250


def write_csv(world: World, market: Market, out: Path) -> int:
    """Write the market's listings CSV; return the number of rows."""
    path = out / "listings" / f"{market.market_id}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    scraped = f"{day_date(market.last_day):%Y-%m-%d} 06:00:00"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        wr = csv.writer(fh, lineterminator="\n")
        wr.writerow(CSV_HEADER)
        for acc in world.accounts:
            if acc.market != market.idx:
                continue
            for li in acc.listings:
                lst = world.listings[li]
                v = listing_view(world, lst)
                amount, cur = price_in_currency(market, lst.price_usd, market.last_day)
                wr.writerow((scraped, market.name, v.ref, v.title, v.handle, f"{amount:.6f}"
                             if cur == "BTC" else f"{amount:.2f}", cur, " / ".join(v.category),
                             v.ships_from, ", ".join(v.ships_to), v.feedback))
                n += 1
    return n


def mysql_literal(value: object) -> str:
    """A value as mysqldump writes it (strings escaped the MySQL way)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    s = str(value)
    out = s.replace("\\", "\\\\").replace("\x00", "\\0").replace("\n", "\\n") \
        .replace("\r", "\\r").replace("'", "\\'").replace('"', '\\"').replace("\x1a", "\\Z")
    return f"'{out}'"


_HEADER = """-- MySQL dump 10.13  Distrib 5.7.31, for Linux (x86_64)
--
-- Host: localhost    Database: {db}
-- ------------------------------------------------------
-- Server version\t5.7.31-0ubuntu0.16.04.1

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;
"""
_FOOTER = """/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;

-- Dump completed on {done}
"""
_TABLES: dict[str, tuple[str, ...]] = {
    "users": ("`id` int(10) unsigned NOT NULL AUTO_INCREMENT",
              "`username` varchar(64) NOT NULL",
              "`password` char(60) NOT NULL",
              "`role` enum('buyer','vendor','admin') NOT NULL DEFAULT 'buyer'",
              "`created_at` datetime NOT NULL",
              "`last_login` datetime DEFAULT NULL"),
    "vendors": ("`user_id` int(10) unsigned NOT NULL",
                "`username` varchar(64) NOT NULL",
                "`level` tinyint(3) unsigned NOT NULL DEFAULT '1'",
                "`sales` int(10) unsigned NOT NULL DEFAULT '0'",
                "`rating` decimal(3,2) DEFAULT NULL",
                "`ships_from` varchar(64) DEFAULT NULL",
                "`pgp_key` text",
                "`btc_payout_address` varchar(90) DEFAULT NULL",
                "`contact` varchar(255) DEFAULT NULL",
                "`about` text",
                "`terms` text",
                "`joined` datetime NOT NULL"),
    "listings": ("`id` int(10) unsigned NOT NULL",
                 "`vendor_id` int(10) unsigned NOT NULL",
                 "`vendor` varchar(64) NOT NULL",
                 "`title` varchar(255) NOT NULL",
                 "`description` text",
                 "`category` varchar(128) DEFAULT NULL",
                 "`price_usd` decimal(12,2) NOT NULL",
                 "`ships_from` varchar(64) DEFAULT NULL",
                 "`ships_to` varchar(255) DEFAULT NULL",
                 "`created_at` datetime NOT NULL"),
    "orders": ("`id` int(10) unsigned NOT NULL AUTO_INCREMENT",
               "`listing_id` int(10) unsigned NOT NULL",
               "`buyer_id` int(10) unsigned NOT NULL",
               "`vendor_id` int(10) unsigned NOT NULL",
               "`amount_usd` decimal(12,2) NOT NULL",
               "`amount_btc` decimal(16,8) NOT NULL",
               "`deposit_address` varchar(90) DEFAULT NULL",
               "`payment_txid` char(64) DEFAULT NULL",
               "`status` enum('pending','shipped','finalized','disputed') NOT NULL",
               "`created_at` datetime NOT NULL"),
    "feedback": ("`id` int(10) unsigned NOT NULL AUTO_INCREMENT",
                 "`order_id` int(10) unsigned NOT NULL",
                 "`listing_id` int(10) unsigned NOT NULL",
                 "`vendor` varchar(64) NOT NULL",
                 "`buyer` varchar(64) NOT NULL",
                 "`rating` tinyint(3) unsigned NOT NULL",
                 "`comment` text",
                 "`created_at` datetime NOT NULL"),
}
_KEYS = {"users": "PRIMARY KEY (`id`),\n  UNIQUE KEY `username` (`username`)",
         "vendors": "PRIMARY KEY (`user_id`)", "listings": "PRIMARY KEY (`id`),\n  "
         "KEY `vendor_id` (`vendor_id`)", "orders": "PRIMARY KEY (`id`),\n  "
         "KEY `listing_id` (`listing_id`)", "feedback": "PRIMARY KEY (`id`),\n  "
         "KEY `order_id` (`order_id`)"}


def _table(fh: IO[str], name: str, rows: Iterable[Sequence[object]]) -> None:
    cols = _TABLES[name]
    fh.write(f"\n--\n-- Table structure for table `{name}`\n--\n\n")
    fh.write(f"DROP TABLE IF EXISTS `{name}`;\n")
    fh.write("/*!40101 SET @saved_cs_client     = @@character_set_client */;\n")
    fh.write("/*!40101 SET character_set_client = utf8 */;\n")
    fh.write(f"CREATE TABLE `{name}` (\n  " + ",\n  ".join(cols) + f",\n  {_KEYS[name]}\n"
             ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n")
    fh.write("/*!40101 SET character_set_client = @saved_cs_client */;\n\n")
    fh.write(f"--\n-- Dumping data for table `{name}`\n--\n\n")
    fh.write(f"LOCK TABLES `{name}` WRITE;\n/*!40000 ALTER TABLE `{name}` DISABLE KEYS */;\n")
    batch: list[str] = []
    for row in rows:
        batch.append("(" + ",".join(mysql_literal(v) for v in row) + ")")
        if len(batch) == _ROWS_PER_INSERT:
            fh.write(f"INSERT INTO `{name}` VALUES " + ",".join(batch) + ";\n")
            batch = []
    if batch:
        fh.write(f"INSERT INTO `{name}` VALUES " + ",".join(batch) + ";\n")
    fh.write(f"/*!40000 ALTER TABLE `{name}` ENABLE KEYS */;\nUNLOCK TABLES;\n")


def _dt(day: int, sec: int = 0) -> str:
    return f"{day_date(max(day, 0)):%Y-%m-%d} {sec // 3600 % 24:02d}:{sec // 60 % 60:02d}:" \
           f"{sec % 60:02d}"


def write_sqldump(world: World, market: Market, out: Path, payout: list[str | None],
                  payments: dict[int, tuple[str, str]]) -> dict[str, int]:
    """Write the seized market's dump; return row counts per table."""
    path = out / "seized" / f"{market.market_id}.sql"
    path.parent.mkdir(parents=True, exist_ok=True)
    accs = sorted((a for a in world.accounts if a.market == market.idx), key=lambda a: a.uid)
    o = world.orders
    order_ids = [oi for a in accs for li in a.listings
                 for oi in range(int(o.starts[li]), int(o.starts[li + 1]))]
    buyers = sorted({int(o.buyer[oi]) for oi in order_ids})
    vendor_uids = {a.uid for a in accs}
    buyer_uid: dict[int, int] = {}
    nxt = max(vendor_uids, default=0) + 1
    taken = {a.handle.casefold() for a in accs}
    buyer_name: dict[int, str] = {}
    for b in buyers:
        buyer_uid[b] = nxt
        nxt += 1
        name = world.buyer_handle(b)
        while name.casefold() in taken:
            name += "_"
        taken.add(name.casefold())
        buyer_name[b] = name
    rng = stream(world.seed, "sqldump")
    counts: dict[str, int] = {}

    def pw() -> str:
        return "$2y$10$" + "".join(rng.choice("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
                                              "wxyz0123456789") for _ in range(53))

    users: list[tuple[int, str, str, str, str, str | None]] = [
        (a.uid, a.handle, pw(), "vendor", _dt(a.start, 3600), _dt(a.end, 7200)) for a in accs]
    users += [(buyer_uid[b], buyer_name[b], pw(), "buyer", _dt(0, 0), None) for b in buyers]
    users.sort(key=lambda r: r[0])
    vendors = []
    listings = []
    for a in accs:
        fb = feedback_views(world, a)
        v = vendor_view(world, a, None, fb)
        contact = " | ".join(f"{k}: {x}" for k, x in a.style.contacts) or None
        vendors.append((a.uid, a.handle, v.level, v.sales, v.rating, v.ships_from,
                        world.keys[a.keys[-1]].armored, payout[a.idx], contact, v.profile,
                        v.terms, _dt(a.start, 3600)))
        for li in a.listings:
            lst = world.listings[li]
            lv = listing_view(world, lst)
            listings.append((int(lst.ref), a.uid, a.handle, lst.title, lv.description,
                             " / ".join(lv.category), round(lst.price_usd, 2), lv.ships_from,
                             ", ".join(lv.ships_to), _dt(lst.start, 43200)))
    listings.sort(key=lambda r: r[0])
    counts["users"], counts["vendors"], counts["listings"] = len(users), len(vendors), \
        len(listings)
    acc_of = {a.idx: a for a in accs}
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(_HEADER.format(db=f"{market.market_id}_prod"))
        _table(fh, "users", users)
        _table(fh, "vendors", vendors)
        _table(fh, "listings", listings)
        orders_rows = []
        fb_rows: list[tuple[int, int, int, str, str, int, str, str]] = []
        for n, oi in enumerate(sorted(order_ids, key=lambda i: (int(o.day[i]), i)), start=1):
            lst = world.listings[int(o.listing[oi])]
            a = acc_of[lst.account]
            dep, txid = payments.get(oi, (None, None))
            sec = (oi * 7919) % 86400
            r = int(o.rating[oi])
            status = "finalized" if r or int(o.day[oi]) + 14 < market.last_day else "shipped"
            if r and r <= 2 and rng.random() < 0.3:
                status = "disputed"
            usd = float(o.usd[oi])
            orders_rows.append((n, int(lst.ref), buyer_uid[int(o.buyer[oi])], a.uid,
                                round(usd, 2), round(usd / usd_per_btc(int(o.day[oi])), 8),
                                dep, txid, status, _dt(int(o.day[oi]), sec)))
            if r:
                text = style.feedback_text(r, stream(world.seed, "fb", oi))
                fb_rows.append((len(fb_rows) + 1, n, int(lst.ref), a.handle,
                                buyer_name[int(o.buyer[oi])], r, text,
                                _dt(int(o.fb_day[oi]), (sec + 3600) % 86400)))
        _table(fh, "orders", orders_rows)
        _table(fh, "feedback", fb_rows)
        counts["orders"], counts["feedback"] = len(orders_rows), len(fb_rows)
        fh.write(_FOOTER.format(done=f"{day_date(market.last_day):%Y-%m-%d} 04:12:55"))
    return counts
