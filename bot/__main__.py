"""`python -m bot` is the same program as `invataxi`."""

import sys

from bot.cli import main

sys.exit(main())
