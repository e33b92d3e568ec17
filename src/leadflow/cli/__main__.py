"""`python -m leadflow.cli`: the same as the `leadflow` console script."""

import sys

from leadflow.cli import main

sys.exit(main())
