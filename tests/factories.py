"""factory_boy factories for Garrison's models."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from garrison.accounts.models import Membership, Team
from garrison.accounts.roles import Role
from threatmodel.models import System

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    """A person with a known password."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class TeamFactory(factory.django.DjangoModelFactory):
    """A team."""

    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.LazyAttribute(lambda t: t.name.lower().replace(" ", "-"))


class MembershipFactory(factory.django.DjangoModelFactory):
    """A person's role in a team."""

    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    role = Role.VIEWER


class SystemFactory(factory.django.DjangoModelFactory):
    """An ML system (made directly, without an audit row, for read tests)."""

    class Meta:
        model = System

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"System {n}")
    slug = factory.LazyAttribute(lambda s: s.name.lower().replace(" ", "-"))
    description = "A classifier."
    tags = factory.LazyFunction(lambda: ["vision"])


def robustness_metrics(robust_at_01: float, clean: float = 0.95) -> dict:
    """Metrics shaped like the robustness runner's."""
    return {
        "attack": "pgd",
        "norm": "linf",
        "epsilons": [0.0, 0.05, 0.1, 0.2],
        "clean_accuracy": clean,
        "robust_accuracy": [clean, (clean + robust_at_01) / 2, robust_at_01, robust_at_01 / 2],
        "attack_success_rate": [0.0, 0.2, 1 - robust_at_01 / clean, 0.9],
    }
