"""API key secrets: how they are made, recognised and stored.

A key is `pdk_` and 40 random characters from a 62-letter alphabet (about 238 bits). Only its
SHA-256 is stored. A slow password hash (PBKDF2, Argon2) exists to make guessing a *low-entropy*
secret expensive; nobody can guess 238 random bits, so that cost would buy nothing and would be
paid on every API request. A fast, unsalted digest also lets authentication find the key with one
indexed equality lookup, which leaks nothing useful through timing (the attacker controls the
input, not the digest).
"""

from __future__ import annotations

import hashlib
import secrets
import string

KEY_PREFIX = "pdk_"
_SECRET_LENGTH = 40
_ALPHABET = string.ascii_letters + string.digits
# Shown in lists so people can tell their keys apart: "pdk_" and 8 characters of the secret.
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 8


def new_api_key_secret() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_LENGTH))


def hash_api_key_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[:DISPLAY_PREFIX_LENGTH]
