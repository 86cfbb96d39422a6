import sys

from servicedesk.cli import main

sys.exit(main())
