"""A package, to load ``cfgapp_pkg.web:app`` (dotted module names)."""
