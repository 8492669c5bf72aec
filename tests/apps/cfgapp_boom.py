"""An app module that raises while being imported (a user bug: show its traceback)."""


def _explode() -> None:
    raise RuntimeError("cfgapp_boom exploded at import")


_explode()
