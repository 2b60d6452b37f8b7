import pytest

from tests.platform.helpers import (  # noqa: F401
    closed,
    competition,
    instructor,
    isolated_platform,
    make_user,
    unlisted,
)


@pytest.fixture(autouse=True)
def inline_validation(settings):
    """Uploads are checked in the test's process at once (the validation task's own code path,
    ``submissions.validation.validate_now``); tests of the queue itself turn it off."""
    settings.ARENA_VALIDATE_INLINE = True
