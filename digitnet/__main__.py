"""`python -m digitnet` is the same as the `digitnet` command."""

from digitnet.cli import main

main()
