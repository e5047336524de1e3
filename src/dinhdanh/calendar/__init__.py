"""Việt Nam's calendar for the legal clock: pure functions, no I/O beyond the packaged data.

- ``clock``: the one clock (UTC instants, Vietnamese dates).
- ``swaps``: the Government's decreed swaps of working days, read from ``decreed_swaps.json``.
- ``working_days``: working days of the civil service (weekends, the Labour Code's holidays from
  the ``holidays`` package, the decreed swaps), dossier deadlines and the supplement pause.

Import the module you need: ``from dinhdanh.calendar import working_days``.
"""
