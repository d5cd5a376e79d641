"""The service's own table: a plain Django model."""

from __future__ import annotations

from django.db import models


class Order(models.Model):
    order_id = models.CharField(max_length=64, unique=True)
    cents = models.IntegerField()

    class Meta:
        app_label = "django_outbox"
