"""A competition's join link: who has it may sign up and join (turned on per competition)."""

from __future__ import annotations

from competitions.models import Competition
from django.db import models


class JoinLink(models.Model):
    competition = models.OneToOneField(Competition, on_delete=models.CASCADE,
                                       related_name="join_link")
    code = models.CharField(max_length=32, unique=True)
    enabled = models.BooleanField(default=True, help_text="Off: the link and code join no one.")
    rotated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"join link of {self.competition.slug}"
