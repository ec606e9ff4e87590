"""Registration: a new user, their roles, audited and announced in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from apps.accounts.errors import (
    EmailTaken,
    WeakPassword,
)
from apps.accounts.models import Roles, User
from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.outbox import emit_event

logger = logging.getLogger(__name__)


def user_register(
    *,
    email: str,
    password: str,
    full_name: str = "",
    roles: Iterable[str] = (Roles.CUSTOMER,),
    is_staff: bool = False,
    is_superuser: bool = False,
    actor: Actor = None,
) -> User:
    """Creates a user with the given roles. 400 `password_too_weak`, 409 `email_taken` (any case)."""
    user = User(
        email=User.objects.normalize_email(email).strip(),
        full_name=full_name,
        is_staff=is_staff,
        is_superuser=is_superuser,
    )
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise WeakPassword(" ".join(exc.messages), details={"password": exc.messages})
    # Hashed before the transaction opens: the hasher is slow on purpose.
    user.set_password(password)
    return _user_insert(user=user, roles=sorted(set(roles)), actor=actor)


@transaction.atomic(durable=True)
def _user_insert(*, user: User, roles: list[str], actor: Actor) -> User:
    try:
        with transaction.atomic():
            user.save(force_insert=True)
    except IntegrityError as exc:  # the only unique columns of a new user are its email's
        raise EmailTaken() from exc
    user.groups.set(_role_groups(roles))
    audit_record(
        actor=actor,
        action="user.registered",
        entity_type="user",
        entity_id=user.id,
        after={
            "email": user.email,
            "full_name": user.full_name,
            "roles": roles,
            "is_staff": user.is_staff,
            "is_superuser": user.is_superuser,
        },
    )
    emit_event(event_type="user.registered", aggregate=user, payload={"user_id": user.id, "roles": roles})
    return user


def _role_groups(roles: Iterable[str]) -> list[Group]:
    # get_or_create, not get: a flushed test database or a fresh one loses the migration's rows.
    return [Group.objects.get_or_create(name=role)[0] for role in roles]
