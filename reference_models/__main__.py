"""``python -m reference_models ...`` is the ``arena`` command line."""

import sys

from reference_models.cli import main

sys.exit(main())
