"""Services: the archive's use cases, shared by every front end (DESIGN.md key idea 2)."""
