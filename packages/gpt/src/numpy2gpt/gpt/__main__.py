"""``python -m numpy2gpt.gpt``: the same as the ``numpy2gpt`` command."""

import sys

from numpy2gpt.gpt.cli import main

sys.exit(main())
