"""dinhdanh: national population register, electronic identification and authentication."""

__version__ = "0.1.0"
