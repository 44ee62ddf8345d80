"""Encryption and keyed hashes for personal fields (ID numbers, phones).

Values are sealed with AES-256-GCM: ``key-id byte | 12-byte nonce | ciphertext+tag``. The key id (the first
byte of the key's SHA-256) says which key sealed a value, so during a rotation old values open with the keys
in ``BIHUAN_DATA_KEYS_OLD`` and ``bihuan rotate_data_key`` re-seals only what the current key did not seal.

A keyed hash (HMAC-SHA256) sits beside each sealed value for exact-match lookup and de-duplication without
decrypting. Its key is ``BIHUAN_LOOKUP_KEY`` if set, else derived from the data key; pin it before rotating
the data key so that lookups keep working throughout (docs/operations.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


def _decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ValueError("BIHUAN_DATA_KEY must be base64") from exc
    if len(key) != 32:
        raise ValueError("BIHUAN_DATA_KEY must decode to 32 bytes")
    return key


def key_id(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()[:1]


@lru_cache(maxsize=8)
def _keys(current: str, old: tuple[str, ...], lookup: str) -> tuple[bytes, AESGCM, dict[bytes, AESGCM], bytes]:
    raw = _decode_key(current)
    by_id = {key_id(_decode_key(k)): AESGCM(_decode_key(k)) for k in old}
    by_id[key_id(raw)] = AESGCM(raw)
    # The lookup-hash key is derived one way, so leaking hashes never helps decrypt.
    hash_key = hashlib.sha256(b"bihuan-lookup-hash|" + (lookup.encode() if lookup else raw)).digest()
    return key_id(raw), AESGCM(raw), by_id, hash_key


_CURRENT: list = []  # the keys of the settings in force (reading settings costs a microsecond a value)


def _current():
    if not _CURRENT:
        _CURRENT.append(_keys(settings.DATA_KEY, tuple(settings.DATA_KEYS_OLD), settings.LOOKUP_KEY))
    return _CURRENT[0]


@receiver(setting_changed)
def _settings_changed(*, setting: str, **_kwargs) -> None:
    if setting in ("DATA_KEY", "DATA_KEYS_OLD", "LOOKUP_KEY"):
        _CURRENT.clear()


def sealed_with_current_key(blob: bytes | memoryview | None) -> bool:
    return not blob or bytes(blob[:1]) == _current()[0]


def seal(value: str) -> bytes:
    """Encrypt a string; empty strings stay empty (nothing to protect)."""
    if not value:
        return b""
    kid, aead, _all, _h = _current()
    nonce = os.urandom(12)
    return kid + nonce + aead.encrypt(nonce, value.encode(), None)


def seal_many(values: list[str]) -> list[bytes]:
    """``seal`` for a list of values with the key looked up once (imports seal tens of thousands)."""
    kid, aead, _all, _h = _current()
    encrypt, urandom = aead.encrypt, os.urandom
    out = []
    for value in values:
        if value:
            nonce = urandom(12)
            out.append(kid + nonce + encrypt(nonce, value.encode(), None))
        else:
            out.append(b"")
    return out


def unseal(blob: bytes | memoryview | None) -> str:
    if not blob:
        return ""
    blob = bytes(blob)
    _kid, _aead, by_id, _h = _current()
    key = by_id.get(blob[:1])
    if key is None:
        raise ValueError("personal field was sealed with a key that is not configured (BIHUAN_DATA_KEYS_OLD?)")
    return key.decrypt(blob[1:13], blob[13:], None).decode()


def lookup_hash(kind: str, value: str) -> str:
    """Keyed hash of a normalised value; ``kind`` separates ID numbers from phones."""
    if not value:
        return ""
    return hmac.digest(_current()[3], f"{kind}|{value}".encode(), "sha256").hex()[:40]


def generate_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()
