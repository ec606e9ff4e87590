"""Field encryption at rest: AES-256-GCM under named keys, so keys can rotate.

A token reads `<version>.<kid>.<urlsafe-base64(nonce + ciphertext)>`: the version and the key id
travel with every value, so old values stay readable while new ones use the new key and format,
and `manage.py rotate_encryption_key` can find what still needs re-encrypting.

- Keys come from `FIELD_ENCRYPTION_KEYS`, a list of "kid:base64-32-byte-key" (urlsafe or standard
  base64, padding optional). The first encrypts; all of them decrypt.
- Empty: one key derived from SECRET_KEY with HKDF, kid "dev" - only when DEBUG or under the test
  settings, so production can never fall back to it.
- Each value gets a random 96-bit nonce (safe for about 2**32 encryptions per key; rotate before).
- GCM's associated data binds a value to where it belongs. `v2` (written now): the context
  ("<app_label>.<Model>.<field>") and the row's primary key, so a ciphertext copied into another
  row, column or table fails authentication instead of decrypting there. `v1` (older values): the
  context only; still read, and rewritten as `v2` by `rotate_encryption_key`.

Parsed keys are cached for the life of the process; `reset_key_cache()` drops them, and does so by
itself when a setting they depend on changes (`override_settings` in tests).
"""

from __future__ import annotations

import base64
import binascii
import json
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
from django.db import connections, models
from django.db.models.expressions import Col
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.utils.functional import cached_property

FORMAT_VERSION = "v2"  # bound to context and row; what encrypt() writes
CONTEXT_ONLY_VERSION = "v1"  # bound to the context only: read, never written
_VERSIONS = frozenset({FORMAT_VERSION, CONTEXT_ONLY_VERSION})
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


def encrypt(plaintext: str, *, context: str, row: str) -> str:
    """A token of `plaintext` that decrypts only with the same context and row (primary key)."""
    if not isinstance(plaintext, str):
        raise TypeError(f"encrypt() takes a str, not {type(plaintext).__name__}")
    associated_data = _associated_data(context, row, version=FORMAT_VERSION)
    keyring = _get_keyring()
    nonce = os.urandom(NONCE_BYTES)
    sealed = keyring.ciphers[keyring.current_kid].encrypt(nonce, plaintext.encode("utf-8"), associated_data)
    payload = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
    return f"{FORMAT_VERSION}.{keyring.current_kid}.{payload}"


def decrypt(token: str, *, context: str, row: str | None) -> str:
    """The plaintext of a token written for this context and row (a `v1` token: this context).

    `row` is the primary key of the row the token was read from; None only where no row is known,
    which a `v2` token refuses.
    """
    version, kid, blob = _parse_token(token, context=context)
    if version == FORMAT_VERSION and row is None:
        raise TamperedToken(context, "the value is bound to its row, and was read without one")
    associated_data = _associated_data(context, row, version=version)
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
            "or it was encrypted for another field or row",
        )
    return plaintext.decode("utf-8")


def current_key_id() -> str:
    return _get_keyring().current_kid


def current_token_prefix() -> str:
    """What every value encrypted under the current key starts with (lets SQL skip them)."""
    return f"{FORMAT_VERSION}.{current_key_id()}."


def needs_rotation(token: str) -> bool:
    """Whether the token is under an older key, or in the older (context-only) format."""
    version, kid, _ = _parse_token(token, context="needs_rotation()")
    return version != FORMAT_VERSION or kid != current_key_id()


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


ROW_SEPARATOR = ":"


class SealedValue(str):
    """A token already encrypted for its row: the field stores it as it is.

    What `EncryptedTextField.pre_save` hands to the database, and what `EncryptedTextField.seal`
    gives code that writes a column without an instance (`QuerySet.update`).
    """


class _EncryptedCol(Col):
    """The column, selected with its row's primary key: `<pk>:<token>` (tokens hold no ':').

    So whatever reads the column (a model, `values()`, `select_related`) reads the key the value is
    bound to with it, and the field decrypts it there. Only the select list changes: filters,
    ordering and updates see the column itself.
    """

    def select_format(self, compiler: Any, sql: str, params: Any) -> tuple[str, Any]:
        pk_column = self.target.model._meta.pk.column
        identifiers = (self.alias, pk_column) if self.alias else (pk_column,)
        pk_sql = ".".join(map(compiler.quote_name_unless_alias, identifiers))
        bound = (
            f"CASE WHEN {sql} IS NULL OR {sql} = '' THEN {sql} "
            f"ELSE CAST({pk_sql} AS text) || '{ROW_SEPARATOR}' || {sql} END"
        )
        return bound, tuple(params) * 4


class EncryptedTextField(models.TextField):
    """Text encrypted at rest; Python code only ever sees the plaintext.

    The context is "<app_label>.<Model>.<field>", so renaming the model or the field makes stored
    values unreadable: pin the old name with `context="..."` when renaming. Each value is bound to
    its row's primary key too: it is encrypted when the instance is saved (`save()`, `create()`,
    `bulk_create()`), once the key is known; a key the database assigns (an AutoField) is drawn
    from its sequence just before the insert. `QuerySet.update()` and `bulk_update()` know no row,
    so they take only `field.seal(value, pk=...)`; plain text there is refused.
    Assign plaintext only (a token assigned as a value is encrypted again). Empty string and None
    are stored as they are. Values can't be searched: each encryption of a value differs, so only
    `isnull` is allowed.
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
        if not cls._meta.abstract:
            pre_save.connect(_reserve_database_assigned_pk, sender=cls, weak=False, dispatch_uid=cls)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.explicit_context is not None:
            kwargs["context"] = self.explicit_context
        return name, path, args, kwargs

    def seal(self, value: str | None, *, pk: object) -> SealedValue | str | None:
        """`value` encrypted for the row whose primary key is `pk` (for `QuerySet.update`)."""
        if value is None or value == "":
            return value
        if pk is None:
            raise FieldError(f"{self._context()}: a value is bound to its row; it needs a primary key.")
        return SealedValue(encrypt(value, context=self._context(), row=str(pk)))

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = super().pre_save(model_instance, add)
        if isinstance(value, SealedValue):
            return value
        return self.seal(self.to_python(value), pk=model_instance.pk)

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, SealedValue):
            return str(value)
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        raise FieldError(
            f"{self._context()} is encrypted for its row: save() the instance, or write "
            "field.seal(value, pk=...) where no instance is at hand (QuerySet.update, bulk_update)."
        )

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        # `<pk>:<token>` when selected through the model (see _EncryptedCol); a bare token otherwise.
        row, separator, token = value.rpartition(ROW_SEPARATOR)
        return decrypt(token, context=self._context(), row=row if separator else None)

    def get_col(self, alias: str, output_field: Any = None) -> Col:
        if alias == self.model._meta.db_table and (output_field is None or output_field == self):
            return self.cached_col
        return _EncryptedCol(alias, self, output_field)

    @cached_property
    def cached_col(self) -> Col:
        return _EncryptedCol(self.model._meta.db_table, self)

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


def _reserve_database_assigned_pk(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """A row whose primary key the database assigns gets it from its sequence before the insert,
    so its encrypted values can be bound to it (Paydesk's own ids are made in Python already)."""
    meta = sender._meta
    if instance.pk is not None or meta.auto_field is None or kwargs.get("raw"):
        return
    with connections[kwargs.get("using") or "default"].cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s))", [meta.db_table, meta.auto_field.column]
        )
        (instance.pk,) = cursor.fetchone()


def _associated_data(context: str, row: str | None, *, version: str) -> bytes:
    if not isinstance(context, str) or not context:
        raise ValueError("An encryption context is required (e.g. '<app_label>.<Model>.<field>').")
    if version == CONTEXT_ONLY_VERSION:
        return context.encode("utf-8")
    if not isinstance(row, str) or not row:
        raise ValueError("A row (the primary key the value belongs to) is required.")
    # JSON keeps the parts apart whatever they hold.
    return json.dumps([version, context, row], separators=(",", ":")).encode("utf-8")


def _parse_token(token: object, *, context: str) -> tuple[str, str, bytes]:
    parts = token.split(".", 2) if isinstance(token, str) else []
    if len(parts) == 3 and parts[0] in _VERSIONS and _KEY_ID.match(parts[1]):
        version, kid = parts[0], parts[1]
        try:
            blob = base64.b64decode(parts[2], altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            pass
        else:
            if len(blob) < NONCE_BYTES + TAG_BYTES:
                raise TamperedToken(context, f"the value under key id {kid!r} is truncated")
            return version, kid, blob
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
