"""`python -m seqops` is the `seqops` command."""

import sys

from seqops.cli import main

sys.exit(main())
