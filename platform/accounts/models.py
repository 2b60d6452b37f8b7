"""A user's role on the platform: students upload, instructors run competitions."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Profile(models.Model):
    class Role(models.TextChoices):
        STUDENT = "student", "Student"
        INSTRUCTOR = "instructor", "Instructor"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STUDENT)

    def __str__(self) -> str:
        return f"{self.user.username} ({self.role})"


def is_instructor(user) -> bool:
    """True for instructors and superusers (they may create competitions and baselines)."""
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    profile = getattr(user, "profile", None)
    return profile is not None and profile.role == Profile.Role.INSTRUCTOR
