from tests.platform.helpers import (  # noqa: F401
    closed,
    competition,
    instructor,
    isolated_platform,
    make_user,
    unlisted,
)
