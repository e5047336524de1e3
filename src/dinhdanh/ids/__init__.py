"""Identifier formats: pure functions, no I/O (python-stdnum style).

Import the module you need: ``from dinhdanh.ids import pid, names``.
"""
