"""An app module whose own import fails: the missing module is not the app module."""

import cfgapp_no_such_dependency  # noqa: F401

application = None
