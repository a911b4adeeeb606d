"""kinfile: self-hosted file intelligence with a VirusTotal v3-compatible API."""

__version__ = "0.1.0"

__all__ = ["__version__"]
