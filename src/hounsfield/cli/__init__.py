"""The `hounsfield` command line."""
