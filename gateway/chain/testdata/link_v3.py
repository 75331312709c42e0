#!/usr/bin/env python3
"""Computes TestFrozenLinks' version-3 record link from SCHEMA.md's
description alone ("Hash chain and checkpoints"), with no pamtrail code: a
third party's verifier, kept honest by TestIndependentVerifier."""
import hashlib
import struct


def uvarint(n):
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([low])
        out += bytes([low | 0x80])


def text(v):
    raw = v.encode()
    return uvarint(len(raw)) + raw


def s(v):
    return b"s" + text(v)


def i(v):
    return b"i" + struct.pack(">q", v)


def sha(b):
    return hashlib.sha256(b).digest()


constants = sha(b"pamtrail session constants v2\x00"
                + text("client.port") + i(5000) + text("session.id") + s("s1"))
genesis = sha(b"pamtrail chain genesis v3\x00" + b"s1")
body = "select 1"
header = s("pam.db.query") + s(body) + s("INFO") + i(1764800000123) + i(1764800000124)
attributes = {
    "db.query.text": b"=",  # equal to the body
    "pam.seq": i(7),
    "pam.duration_ms": b"d" + struct.pack(">d", 0.25),
    "pam.response.truncated": b"b\x01",
    "pam.db.columns": b"a" + uvarint(2) + text("n") + text("note"),
    "pam.x": b"n",
    "a": s("é"),
}
keys = sorted(attributes, key=lambda k: k.encode())
shape = sha(b"pamtrail record shape v3\x00" + b"".join(text(k) for k in keys))
canonical = header + shape + b"".join(attributes[k] for k in keys)
print(sha(genesis + constants + canonical).hex())
