"""Field encryption at rest: AES-256-GCM under named keys, so keys can rotate.

A token reads `v1.<kid>.<urlsafe-base64(nonce + ciphertext)>`: the version and the key id travel
with every value, so old values stay readable while new ones use the new key, and
`manage.py rotate_encryption_key` can find what still needs re-encrypting.

- Keys come from `FIELD_ENCRYPTION_KEYS`, a list of "kid:base64-32-byte-key" (urlsafe or standard
  base64, padding optional). The first encrypts; all of them decrypt.
- Empty: one key derived from SECRET_KEY with HKDF, kid "dev" - only when DEBUG or under the test
  settings, so production can never fall back to it.
- Each value gets a random 96-bit nonce (safe for about 2**32 encryptions per key; rotate before).
- The context ("<app_label>.<Model>.<field>", the column's own) is GCM's associated data: a ciphertext
  copied into another column or table fails authentication instead of decrypting there.

Parsed keys are cached for the life of the process; `reset_key_cache()` drops them, and does so by
itself when a setting they depend on changes (`override_settings` in tests).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core import checks
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver

FORMAT_VERSION = "v1"
DEV_KEY_ID = "dev"
TEST_SETTINGS_MODULE = "config.settings.test"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
# A kid sits between the dots of a token and after nothing but "kid:" in the setting.
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_DEV_KEY_INFO = b"paydesk field encryption v1 (dev key derived from SECRET_KEY)"
_SETTINGS_READ = frozenset({"FIELD_ENCRYPTION_KEYS", "SECRET_KEY", "DEBUG", "SETTINGS_MODULE"})


class DecryptionError(Exception):
    """A stored value could not be decrypted. Never carries key material or plaintext."""

    def __init__(self, context: str, reason: str) -> None:
        self.context = context
        self.reason = reason
        super().__init__(f"{context}: {reason}")


class MalformedToken(DecryptionError):
    pass


class UnknownKeyId(DecryptionError):
    pass


class TamperedToken(DecryptionError):
    pass


@dataclass(frozen=True)
class _Keyring:
    current_kid: str
    ciphers: dict[str, AESGCM]


_keyring: _Keyring | None = None
_keyring_lock = threading.Lock()


def encrypt(plaintext: str, *, context: str) -> str:
    if not isinstance(plaintext, str):
        raise TypeError(f"encrypt() takes a str, not {type(plaintext).__name__}")
    keyring = _get_keyring()
    nonce = os.urandom(NONCE_BYTES)
    sealed = keyring.ciphers[keyring.current_kid].encrypt(
        nonce, plaintext.encode("utf-8"), _associated_data(context)
    )
    payload = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
    return f"{FORMAT_VERSION}.{keyring.current_kid}.{payload}"


def decrypt(token: str, *, context: str) -> str:
    associated_data = _associated_data(context)
    kid, blob = _parse_token(token, context=context)
    cipher = _get_keyring().ciphers.get(kid)
    if cipher is None:
        raise UnknownKeyId(
            context, f"encrypted under key id {kid!r}, which FIELD_ENCRYPTION_KEYS does not hold"
        )
    try:
        plaintext = cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated_data)
    except InvalidTag:
        raise TamperedToken(
            context,
            f"the value under key id {kid!r} failed authentication: it was altered, "
            "or it was encrypted for another field",
        )
    return plaintext.decode("utf-8")


def current_key_id() -> str:
    return _get_keyring().current_kid


def current_token_prefix() -> str:
    """What every value encrypted under the current key starts with (lets SQL skip them)."""
    return f"{FORMAT_VERSION}.{current_key_id()}."


def needs_rotation(token: str) -> bool:
    kid, _ = _parse_token(token, context="needs_rotation()")
    return kid != current_key_id()


def reset_key_cache() -> None:
    global _keyring
    with _keyring_lock:
        _keyring = None


@receiver(setting_changed)
def _reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in _SETTINGS_READ:
        reset_key_cache()


@checks.register(checks.Tags.security)
def check_field_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Malformed or missing keys fail `manage.py check` (and migrate, runserver), not the first save."""
    try:
        _load_keyring()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="core.E101")]
    return []


class EncryptedTextField(models.TextField):
    """Text encrypted at rest; Python code only ever sees the plaintext.

    The context is "<app_label>.<Model>.<field>", so renaming the model or the field makes stored
    values unreadable: pin the old name with `context="..."` when renaming. Assign plaintext only
    (a token assigned as a value is encrypted again). Empty string and None are stored as they are.
    Values can't be searched: each encryption of a value differs, so only `isnull` is allowed.
    """

    description = "Text encrypted at rest (AES-256-GCM)"

    def __init__(self, *args: Any, context: str | None = None, **kwargs: Any) -> None:
        self.explicit_context = context
        self.encryption_context = context
        super().__init__(*args, **kwargs)

    def contribute_to_class(self, cls: type[models.Model], name: str, private_only: bool = False) -> None:
        super().contribute_to_class(cls, name, private_only=private_only)
        if self.explicit_context is None:
            self.encryption_context = f"{cls._meta.label}.{name}"

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.explicit_context is not None:
            kwargs["context"] = self.explicit_context
        return name, path, args, kwargs

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value, context=self._context())

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return decrypt(value, context=self._context())

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name != "isnull":
            self._refuse_search(lookup_name)
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name: str) -> Any:
        self._refuse_search(lookup_name)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        if self.primary_key or self.unique or self.db_index:  # type: ignore[attr-defined]  # not in django-stubs
            errors.append(
                checks.Error(
                    "An EncryptedTextField can't be a primary key, unique or indexed: "
                    "each encryption of the same value differs.",
                    obj=self,
                    id="core.E102",
                )
            )
        return errors

    def _context(self) -> str:
        if self.encryption_context is None:
            raise FieldError("An EncryptedTextField outside a model needs an explicit context=.")
        return self.encryption_context

    def _refuse_search(self, lookup_name: str) -> None:
        raise FieldError(
            f"{self.encryption_context or 'This field'} is encrypted with a random nonce, so it "
            f"can't be searched: '{lookup_name}' is not supported, only 'isnull' is."
        )


def _associated_data(context: str) -> bytes:
    if not isinstance(context, str) or not context:
        raise ValueError("An encryption context is required (e.g. '<app_label>.<Model>.<field>').")
    return context.encode("utf-8")


def _parse_token(token: object, *, context: str) -> tuple[str, bytes]:
    parts = token.split(".", 2) if isinstance(token, str) else []
    if len(parts) == 3 and parts[0] == FORMAT_VERSION and _KEY_ID.match(parts[1]):
        kid = parts[1]
        try:
            blob = base64.b64decode(parts[2], altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            pass
        else:
            if len(blob) < NONCE_BYTES + TAG_BYTES:
                raise TamperedToken(context, f"the value under key id {kid!r} is truncated")
            return kid, blob
    raise MalformedToken(context, f"not an encrypted value (expected '{FORMAT_VERSION}.<kid>.<base64>')")


def _get_keyring() -> _Keyring:
    global _keyring
    keyring = _keyring
    if keyring is None:
        with _keyring_lock:
            if _keyring is None:
                _keyring = _load_keyring()
            keyring = _keyring
    return keyring


def _load_keyring() -> _Keyring:
    entries = settings.FIELD_ENCRYPTION_KEYS
    if isinstance(entries, str):
        entries = entries.split(",")
    entries = [entry.strip() for entry in entries if entry and entry.strip()]
    if entries:
        return _parse_keys(entries)
    if not (settings.DEBUG or _settings_module() == TEST_SETTINGS_MODULE):
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is empty: set it to 'kid:base64-32-byte-key' (the key derived from "
            "SECRET_KEY is only for DEBUG and tests)."
        )
    return _Keyring(current_kid=DEV_KEY_ID, ciphers={DEV_KEY_ID: AESGCM(_derive_dev_key())})


def _settings_module() -> str | None:
    # override_settings hides SETTINGS_MODULE (None) unless it overrides it; the process's own
    # module is still the one Django loaded from the environment.
    return settings.SETTINGS_MODULE or os.environ.get("DJANGO_SETTINGS_MODULE")


def _parse_keys(entries: Iterable[str]) -> _Keyring:
    ciphers: dict[str, AESGCM] = {}
    for position, entry in enumerate(entries, start=1):
        kid, separator, encoded = entry.partition(":")
        # Messages name the entry by position and kid, never by its key material.
        where = f"FIELD_ENCRYPTION_KEYS entry {position}"
        if not separator or not _KEY_ID.match(kid):
            raise ImproperlyConfigured(
                f"{where} must read 'kid:base64-key' with a kid of 1-32 letters, digits, '_' or '-'."
            )
        if kid in ciphers:
            raise ImproperlyConfigured(f"{where}: key id {kid!r} appears twice.")
        key = _decode_key(encoded)
        if key is None or len(key) != KEY_BYTES:
            raise ImproperlyConfigured(f"{where} ({kid!r}): the key must be {KEY_BYTES} bytes in base64.")
        ciphers[kid] = AESGCM(key)
    return _Keyring(current_kid=next(iter(ciphers)), ciphers=ciphers)


def _decode_key(encoded: str) -> bytes | None:
    padded = encoded.strip() + "=" * (-len(encoded.strip()) % 4)
    altchars = b"-_" if ("-" in padded or "_" in padded) else None
    try:
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None


def _derive_dev_key() -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=_DEV_KEY_INFO)
    return hkdf.derive(settings.SECRET_KEY.encode("utf-8"))
