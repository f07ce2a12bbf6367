"""Real OpenPGP (RFC 4880 / RFC 9580 v4) public keys, built deterministically from a seed.

A key is an Ed25519 (EdDSA, algorithm 22) primary key with one user id and a positive
self-certification, optionally followed by a Curve25519 ECDH (algorithm 18) encryption
subkey with its binding signature. Ed25519 signatures are deterministic, so the same seed
always yields the same bytes, fingerprint and armor; GnuPG imports them as valid keys.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from darkmap.model.openpgp import armor, crc24, packet

__all__ = ["PgpKey", "armor", "crc24", "make_key"]

_OID_ED25519 = bytes.fromhex("2b06010401da470f01")
_OID_CV25519 = bytes.fromhex("2b060104019755010501")
_ALG_EDDSA = 22
_ALG_ECDH = 18
_HASH_SHA256 = 8
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


@dataclass(frozen=True, slots=True)
class PgpKey:
    """A generated transferable public key."""

    fingerprint: str  # 40 upper-case hex digits
    key_id: str  # last 16 hex digits of the fingerprint
    user_id: str
    created: int  # unix seconds
    packets: bytes  # binary transferable public key
    armored: str


def _mpi(data: bytes) -> bytes:
    data = data.lstrip(b"\x00") or b"\x00"
    return struct.pack(">H", int.from_bytes(data, "big").bit_length()) + data


def _subpacket(kind: int, data: bytes) -> bytes:
    return bytes([len(data) + 1, kind]) + data  # every subpacket here is < 192 bytes


def _key_body(created: int, alg: int, oid: bytes, point: bytes, extra: bytes = b"") -> bytes:
    return (b"\x04" + struct.pack(">I", created) + bytes([alg, len(oid)]) + oid
            + _mpi(b"\x40" + point) + extra)


def _signature(signer: Ed25519PrivateKey, sig_type: int, hashed_prefix: bytes,
               hashed_sub: bytes, unhashed_sub: bytes) -> bytes:
    head = (bytes([4, sig_type, _ALG_EDDSA, _HASH_SHA256])
            + struct.pack(">H", len(hashed_sub)) + hashed_sub)
    trailer = b"\x04\xff" + struct.pack(">I", len(head))
    digest = hashlib.sha256(hashed_prefix + head + trailer).digest()
    sig = signer.sign(digest)
    return (head + struct.pack(">H", len(unhashed_sub)) + unhashed_sub + digest[:2]
            + _mpi(sig[:32]) + _mpi(sig[32:]))


def _key_hash_prefix(body: bytes) -> bytes:
    return b"\x99" + struct.pack(">H", len(body)) + body


def make_key(secret: bytes, user_id: str, created: int, with_subkey: bool = True,
             headers: tuple[tuple[str, str], ...] = ()) -> PgpKey:
    """Build a key from a 32+ byte ``secret`` (the same secret gives the same key)."""
    seed = hashlib.sha256(b"primary" + secret).digest()
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    pub = sk.public_key().public_bytes(*_RAW)
    body = _key_body(created, _ALG_EDDSA, _OID_ED25519, pub)
    fpr = hashlib.sha1(_key_hash_prefix(body), usedforsecurity=False).digest()  # RFC 4880
    issuer = _subpacket(33, b"\x04" + fpr)
    uid = user_id.encode("utf-8")
    hashed = (_subpacket(2, struct.pack(">I", created)) + issuer
              + _subpacket(27, b"\x03")  # certify + sign
              + _subpacket(11, bytes([9, 8, 7]))  # AES256, AES192, AES128
              + _subpacket(21, bytes([10, 9, 8]))  # SHA512, SHA384, SHA256
              + _subpacket(22, bytes([2, 3, 1]))
              + _subpacket(30, b"\x01"))
    unhashed = _subpacket(16, fpr[-8:])
    self_sig = _signature(sk, 0x13, _key_hash_prefix(body) + b"\xb4"
                          + struct.pack(">I", len(uid)) + uid, hashed, unhashed)
    out = packet(6, body) + packet(13, uid) + packet(2, self_sig)
    if with_subkey:
        xsk = X25519PrivateKey.from_private_bytes(hashlib.sha256(b"subkey" + secret).digest())
        xpub = xsk.public_key().public_bytes(*_RAW)
        sub_body = _key_body(created, _ALG_ECDH, _OID_CV25519, xpub,
                             extra=bytes([3, 1, _HASH_SHA256, 7]))  # KDF: SHA256, AES128
        sub_hashed = (_subpacket(2, struct.pack(">I", created)) + issuer
                      + _subpacket(27, b"\x0c"))  # encrypt communications + storage
        bind = _signature(sk, 0x18, _key_hash_prefix(body) + _key_hash_prefix(sub_body),
                          sub_hashed, unhashed)
        out += packet(14, sub_body) + packet(2, bind)
    hexfpr = fpr.hex().upper()
    return PgpKey(fingerprint=hexfpr, key_id=hexfpr[-16:], user_id=user_id, created=created,
                  packets=out, armored=armor(out, headers))
