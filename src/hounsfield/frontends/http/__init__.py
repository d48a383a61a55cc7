"""A thin ASGI layer: routing, requests and responses without a framework's overhead.

DESIGN.md §4 measured raw ASGI at about twice Starlette's request rate on hot endpoints, so the
DICOMweb front end uses this small layer directly.
"""
