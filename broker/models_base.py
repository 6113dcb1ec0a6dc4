"""Small pieces every model module of the app uses (``broker.models``,
``broker.models_delivery``)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


def choice_check(field: str, choices: type[models.TextChoices], name: str):
    """The CHECK constraint that keeps ``field`` among the values of ``choices``."""
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


def field_values(row, names: tuple[str, ...]) -> dict:
    """``{name: row.name}`` for ``names``, in that order (a row's JSON form)."""
    return {name: getattr(row, name) for name in names}
