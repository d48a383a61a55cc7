"""Admin front end: the /api JSON endpoints."""
