"""Pure domain: the DICOM model, the header walker, the query AST and the reference matcher.

Nothing here does I/O beyond reading from a file object it is handed, and nothing here imports
from another Hounsfield layer.
"""
