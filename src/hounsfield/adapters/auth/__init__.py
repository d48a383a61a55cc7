"""Authenticators (ports/auth.py): OIDC bearer JWTs checked against an issuer's JWKS, and
API keys kept hashed in the index."""
