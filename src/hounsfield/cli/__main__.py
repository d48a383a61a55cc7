"""`python -m hounsfield.cli`."""

from hounsfield.cli.main import main

main()
