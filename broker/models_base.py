"""Small pieces every model module of the app uses (``broker.models``,
``broker.models_delivery``)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


def choice_check(field: str, choices: type[models.TextChoices], name: str):
    """The CHECK constraint that keeps ``field`` among the values of ``choices``."""
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


def keyed_by(target: str, on_delete, *, related_name: str, db_column: str):
    """A one-to-one relation that is also the primary key: at most one row per ``target``
    row, stored under the target's id column (``db_column``)."""
    return models.OneToOneField(
        target,
        on_delete=on_delete,
        primary_key=True,
        related_name=related_name,
        db_column=db_column,
    )
