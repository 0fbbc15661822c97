"""`python -m adapters.cli`: the same as the `seedbot` script."""

from adapters.cli import main

main()
