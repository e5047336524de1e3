"""The population as a whole: synthetic generation and bulk import."""
