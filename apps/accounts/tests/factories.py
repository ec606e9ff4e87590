"""Users for tests. `roles=[...]` puts the user in those role groups (default: customer)."""

from __future__ import annotations

import factory
from django.contrib.auth.models import Group

from apps.accounts.models import Roles, User

DEFAULT_PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.django.Password(DEFAULT_PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted, **kwargs) -> None:
        if create:
            names = (Roles.CUSTOMER,) if extracted is None else extracted
            self.groups.set([Group.objects.get_or_create(name=name)[0] for name in names])
