"""Encryption and keyed hashes for personal fields (ID numbers, phones).

Values are sealed with AES-256-GCM: ``version byte | 12-byte nonce | ciphertext+tag``. The version byte names
the key (0 = current ``BIHUAN_DATA_KEY``; older keys are tried on open during a rotation). A keyed hash
(HMAC-SHA256 with a key derived from the data key) sits beside each sealed value for exact-match lookup
and de-duplication without decrypting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

_VERSION = b"\x01"


def _decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ValueError("BIHUAN_DATA_KEY must be base64") from exc
    if len(key) != 32:
        raise ValueError("BIHUAN_DATA_KEY must decode to 32 bytes")
    return key


@lru_cache(maxsize=8)
def _keys(current: str, old: tuple[str, ...]) -> tuple[AESGCM, list[AESGCM], bytes]:
    raw = _decode_key(current)
    # The lookup-hash key is derived, so leaking hashes never helps decrypt and vice versa.
    hash_key = hashlib.sha256(b"bihuan-lookup-hash|" + raw).digest()
    return AESGCM(raw), [AESGCM(_decode_key(k)) for k in old], hash_key


def _current():
    return _keys(settings.DATA_KEY, tuple(settings.DATA_KEYS_OLD))


def seal(value: str) -> bytes:
    """Encrypt a string; empty strings stay empty (nothing to protect)."""
    if not value:
        return b""
    aead, _old, _h = _current()
    nonce = os.urandom(12)
    return _VERSION + nonce + aead.encrypt(nonce, value.encode(), None)


def unseal(blob: bytes | memoryview | None) -> str:
    if not blob:
        return ""
    blob = bytes(blob)
    nonce, body = blob[1:13], blob[13:]
    aead, old, _h = _current()
    for key in [aead, *old]:
        try:
            return key.decrypt(nonce, body, None).decode()
        except Exception:  # noqa: BLE001 - wrong key: try the next one
            continue
    raise ValueError("personal field cannot be decrypted with the configured data keys")


def lookup_hash(kind: str, value: str) -> str:
    """Keyed hash of a normalised value; ``kind`` separates ID numbers from phones."""
    if not value:
        return ""
    _a, _o, hash_key = _current()
    return hmac.new(hash_key, f"{kind}|{value}".encode(), hashlib.sha256).hexdigest()[:40]


def generate_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()
