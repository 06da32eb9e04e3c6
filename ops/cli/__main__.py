"""``python -m ops.cli``: the ``pombolt`` command line."""

from ops.cli import main

main()
