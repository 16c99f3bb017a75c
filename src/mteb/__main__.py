"""`python -m src.mteb MODEL_OR_RUN --tasks ...` (src/mteb/cli.py)."""

import sys

from src.mteb.cli import main

sys.exit(main())
