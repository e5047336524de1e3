"""The passport register: ordinary passports (hộ chiếu phổ thông) issued in Việt Nam.

A passport has a TD3 machine-readable zone (2 lines of 44, document code ``P``, state ``VNM``,
the PID as the personal number) and, when asked for, a chip (ICAO 9303 LDS: EF.COM, DG1 with the
TD3 MRZ, DG2, DG14, DG15, EF.SOD) signed by a Document Signer of the national PKI, the one that
signs the chip ID cards. Numbers are one letter and seven digits (``P0000001``), allocated by one
counter row. The register keeps at most one valid passport per person; every step is a register
event of the person (kind ``passport.<step>``, field ``passport``).

- :mod:`.tables`: ``passports`` and ``passport_counters``;
- :mod:`.numbers`: the number format and its atomic allocation;
- :mod:`.production`: printed fields, the MRZ and the signed chip of one passport;
- :mod:`.service`: issue, revoke, read, verify a chip, and the dossier approval's effect.
"""


def hooks() -> None:
    """Make the register follow life events: a death revokes the passport (``service.after_life_event``),
    in the same transaction. Called where the app and the register's CLI are wired, beside ``eid.hooks``."""
    from dinhdanh.passports.service import after_life_event
    from dinhdanh.registry import events

    if after_life_event not in events.AFTER_EVENT:
        events.AFTER_EVENT.append(after_life_event)
