"""DICOMweb front end (PS3.18): STOW-RS, QIDO-RS, WADO-RS and DELETE. It only translates."""
