"""factory_boy factories shared by every test package."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth.models import Group

from leadflow.models import Company, EngagementEvent, EventKind, Lead, Stage, User

TOKYO = dt.timezone(dt.timedelta(hours=9))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.jp")
    password = factory.django.Password("pw-for-tests")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        # UserFactory(roles=["Sales rep"]) puts the user in those groups.
        if create and extracted:
            for name in extracted:
                self.groups.add(Group.objects.get_or_create(name=name)[0])


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    name = factory.Sequence(lambda n: f"株式会社テスト{n}")
    domain = factory.Sequence(lambda n: f"test{n}.example.jp")
    employee_count = 250
    industry = "manufacturing"
    prefecture = "東京都"


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    email = factory.Sequence(lambda n: f"lead{n}@example.jp")
    last_name = "山田"
    first_name = factory.Sequence(lambda n: f"太郎{n}")
    company = factory.SubFactory(CompanyFactory)
    stage = Stage.KNOWN
    source = "test"


class EngagementEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EngagementEvent

    lead = factory.SubFactory(LeadFactory)
    kind = EventKind.PAGE_VIEW
    occurred_at = dt.datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO)
    properties = factory.LazyFunction(dict)
    source = "test"
