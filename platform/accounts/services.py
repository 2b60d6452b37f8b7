"""Creating users from scripts (management commands, the demo, tests)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from .models import Profile

INSTRUCTORS_GROUP = "instructors"
# What an instructor may do in Django admin: run competitions, look at submissions and scores.
_INSTRUCTOR_PERMISSIONS = [
    ("competitions", "competition", ("add", "change", "view")),
    ("competitions", "track", ("add", "change", "delete", "view")),
    ("competitions", "participation", ("add", "change", "delete", "view")),
    ("submissions", "submission", ("view",)),
    ("submissions", "score", ("view",)),
]


def instructors_group() -> Group:
    group, _ = Group.objects.get_or_create(name=INSTRUCTORS_GROUP)
    for app_label, model, actions in _INSTRUCTOR_PERMISSIONS:
        for action in actions:
            perm = Permission.objects.filter(
                content_type__app_label=app_label, codename=f"{action}_{model}"
            ).first()
            if perm is not None:
                group.permissions.add(perm)
    return group


def check_username(username: str) -> None:
    """Raise ``ValueError`` unless Django's own rules for the username field accept ``username``
    (letters, digits and @/./+/-/_, at most 150 characters), as its admin and forms do."""
    field = get_user_model()._meta.get_field("username")
    try:
        field.run_validators(field.to_python(username))
        if not username:
            raise ValidationError("This field cannot be blank.")
    except ValidationError as exc:
        raise ValueError(f"invalid username {username!r}: {' '.join(exc.messages)}") from None


@transaction.atomic
def create_user(
    username: str, role: str = Profile.Role.STUDENT, *, password: str | None = None,
    email: str = "",
):
    """Create (or update the role of) a user and return ``(user, api_token_key)``."""
    if role not in Profile.Role.values:
        raise ValueError(f"unknown role {role!r}; use one of: {', '.join(Profile.Role.values)}")
    user_model = get_user_model()
    check_username(username)
    user, created = user_model.objects.get_or_create(username=username, defaults={"email": email})
    if password:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.is_staff = role == Profile.Role.INSTRUCTOR or user.is_superuser
    user.save()
    Profile.objects.update_or_create(user=user, defaults={"role": role})
    if role == Profile.Role.INSTRUCTOR:
        user.groups.add(instructors_group())
    token, _ = Token.objects.get_or_create(user=user)
    return user, token.key
