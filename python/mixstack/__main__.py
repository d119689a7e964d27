import sys

from mixstack import main

sys.exit(main())
