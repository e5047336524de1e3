"""ICAO Doc 9303 Logical Data Structure: the files on an eMRTD chip, and passive authentication.

One module per file or mechanism, named as in the spec: ``tlv`` (BER-TLV), ``efcom``, ``dg1``,
``dg2``, ``dg13`` (Vietnamese layout), ``dg14``, ``dg15``, ``aa`` (Active Authentication),
``cms`` (SignedData), ``sod`` (EF.SOD and its LDSSecurityObject), ``masterlist`` (CSCA master
lists), ``certs`` (keys, signatures, the trust store) and ``passive`` (passive authentication).
Everything here is pure: bytes in, values or reports out; no database, no files.
"""
