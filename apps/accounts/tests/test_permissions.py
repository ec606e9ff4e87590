"""`user_has_permission`: the one-query check on hot paths answers as Django's `has_perm` does."""

import pytest
from django.contrib.auth.models import Permission

from apps.accounts.models import Roles
from apps.accounts.selectors import user_has_permission
from apps.accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REVIEW = "payments.review_payment"


def _direct_reviewer():
    user = UserFactory()
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="payments", codename="review_payment")
    )
    return user


@pytest.mark.parametrize(
    ("make_user", "expected"),
    [
        (lambda: UserFactory(), False),
        (lambda: UserFactory(roles=[Roles.REVIEWER]), True),
        (lambda: UserFactory(roles=[Roles.ADMIN]), True),
        (_direct_reviewer, True),
        (lambda: UserFactory(is_superuser=True), True),
        (lambda: UserFactory(roles=[Roles.REVIEWER], is_active=False), False),
        (lambda: UserFactory(is_superuser=True, is_active=False), False),
    ],
    ids=[
        "customer",
        "reviewer",
        "admin",
        "direct-grant",
        "superuser",
        "inactive-reviewer",
        "inactive-superuser",
    ],
)
def test_answers_as_has_perm_does(make_user, expected):
    user = make_user()

    assert user_has_permission(user, REVIEW) is expected
    assert user.has_perm(REVIEW) is expected


def test_another_apps_permission_of_the_same_name_does_not_count():
    user = UserFactory(roles=[Roles.REVIEWER])

    assert user_has_permission(user, "wallets.review_payment") is False
