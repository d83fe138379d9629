"""The {{name}} plugin: each export of `wit/world.wit` is a method of `WitWorld`
(`word-count` becomes `word_count`). Raise `Err(value)` to fail a tool whose WIT
return type is a `result`."""

import wit_world
from componentize_py_types import Err
from wit_world.imports import log


class WitWorld(wit_world.WitWorld):
    def hello(self, name: str) -> str:
        name = name.strip()
        if not name:
            raise Err('name is empty; give a name, e.g. "Ada"')
        log.write(log.Level.INFO, "greeting", [("name", name)])
        return f"Hello, {name}!"
