"""The durable scheduler: timers (deadlines, automatic refusals, reminders) kept as rows.

A job is ``(kind, key)``, due at an instant; ``jobs.run_due`` claims the due ones with a lease and
runs each kind's handler in one unit of work that also marks the job done, so a crash at any point
leaves the job to be taken again once its lease has passed (issue 12). No sleeping thread holds
any state: ``jobs.loop`` only calls ``run_due`` again.
"""
