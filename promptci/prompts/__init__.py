"""The prompt registry: the file format, rendering, versions and labels."""
