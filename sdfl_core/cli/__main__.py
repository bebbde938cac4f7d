"""``python -m sdfl_core.cli``: the `sdfl` command."""
import sys

from . import main

sys.exit(main())
