"""Configuration: the YAML schema, names and labels, durations, encrypted keys."""
