"""``python -m services.trainer``: the trainer container's command and ``make train``."""

import sys

from services.trainer.train import main

sys.exit(main())
