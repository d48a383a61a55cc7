"""`python -m hounsfield.cli`."""

from hounsfield.cli.main import main

if __name__ == "__main__":  # not when a spawned DIMSE worker re-imports the main module
    main()
