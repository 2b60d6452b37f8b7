from tests.platform.helpers import (  # noqa: F401
    competition,
    instructor,
    isolated_platform,
    make_user,
)
