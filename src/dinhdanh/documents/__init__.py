"""Result documents: the signed PDF each decided dossier produces, and the standard slips.

``model`` (kinds, agency, content), ``render`` (PDF/A-2B in Vietnamese, fpdf2, the fonts shipped in
``fonts/``), ``ca`` (the document-signing CA beside the CSCA, per-agency signers, CRLs), ``sign``
(PAdES with pyHanko), ``verify`` (pyHanko's validator against the CA), ``results`` (the register:
issue, revoke, check) and ``tables``.
"""
