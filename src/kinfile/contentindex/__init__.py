"""The content (byte n-gram) index behind ``content:`` searches: see docs/content-index.md."""
