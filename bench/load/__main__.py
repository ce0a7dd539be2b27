"""``python -m bench.load``: see the package's docstring."""

from bench.load import main

main()
