"""Who wrote it: the Implementation Class UID and Version Name of Hounsfield.

PS3.7 D.3.3.2 and PS3.10 7.1 require every implementation to identify itself, in association
negotiation (Implementation Class UID / Version Name sub-items) and in the File Meta Information
of the PS3.10 files it creates. The UID is a UUID-derived UID (PS3.5 B.2, root 2.25), so it is
globally unique without a registered organisation root; it changes only when the implementation
does something a peer would need to tell apart.
"""

from __future__ import annotations

IMPLEMENTATION_CLASS_UID = "2.25.154355203408000775493062195820001319625"
#: SH, at most 16 characters (PS3.7 D.3.3.2.3).
IMPLEMENTATION_VERSION_NAME = "HOUNSFIELD_01"
