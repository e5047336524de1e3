"""Fees: what a public service costs and how it is paid.

``vnpay`` is VNPAY's payment protocol (version 2.1.0), pure; ``gateway`` the client of its API
(querydr, refund); ``payments`` the payments of a payable reference (a dossier's code), their
state machine and the callbacks; ``local_gateway`` a stand-in for VNPAY that speaks the same
protocol, for the demo and the tests only.
"""
