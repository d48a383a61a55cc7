"""Pixel services: decoding and encoding frames in every stored transfer syntax, transcoding
whole objects, and rendering frames for display (PS3.5 8 and Annex A, PS3.3 C.7.6.3 and C.11,
PS3.4 Annex N, PS3.18 8.3.5 and 8.7)."""
