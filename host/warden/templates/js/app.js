// The {{name}} plugin: each export of `wit/world.wit` is an exported function here,
// in camelCase (`word-count` is `wordCount`). Throw a value to fail a tool whose WIT
// return type is a `result`: the value is the error.

import { write } from "warden:host/log@0.1.0";

export function hello(name) {
  name = name.trim();
  if (!name) throw 'name is empty; give a name, e.g. "Ada"';
  write("info", "greeting", [["name", name]]);
  return `Hello, ${name}!`;
}
