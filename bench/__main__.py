"""`python -m bench <scenario> [options]`: see `python -m bench --help`."""

from bench.cli import main

main()
