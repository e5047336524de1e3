"""Electronic identification accounts (Decree 69/2024): levels, registration, credentials, locks."""
