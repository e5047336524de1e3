"""Online public services (issue 12): the catalogue of services as data (``dossiers.catalogue``).

Dossiers, their workflow and the standard slips come later, on top of the catalogue: a dossier keeps
the id of the service version it was filed under (``code@effective_from``).
"""
