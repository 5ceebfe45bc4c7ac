import sys

from embedbench.cli.main import main

sys.exit(main())
