"""``python -m tradeloop`` runs the command line."""

from tradeloop.cli import main

raise SystemExit(main())
