"""Domain errors. Each carries what a front end needs to map it to a standard status."""

from __future__ import annotations


class HounsfieldError(Exception):
    """Base of every error Hounsfield raises on purpose."""


class InvalidDicomError(HounsfieldError):
    """The bytes are not a DICOM object we can read (PS3.10 7.1 file format, PS3.5 7 encoding)."""


class MissingAttributeError(InvalidDicomError):
    """A Type 1 attribute needed to identify or index the object is absent or empty."""

    def __init__(self, keyword: str) -> None:
        super().__init__(f"missing required attribute {keyword}")
        self.keyword = keyword


class InvalidQueryError(HounsfieldError):
    """A query key or value is not valid for its VR or level (PS3.18 8.3.4, PS3.4 C.2.2.2)."""


class NotFoundError(HounsfieldError):
    """The requested study, series, instance, frame or resource does not exist here."""


class ConflictError(HounsfieldError):
    """The request conflicts with stored state (for example, an instance under another study)."""
