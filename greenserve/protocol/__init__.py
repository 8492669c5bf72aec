"""Sans-io HTTP protocol code: bytes in, events out. Nothing here does I/O."""
