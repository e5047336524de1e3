"""Data exchange with connected partners: verification, batch matching, change notifications."""
