// The `jstools` example plugin: Warden tools written in JavaScript.
//
// Each exported function implements the WIT export of the same name in
// `wit/world.wit`, in camelCase (`word-stats` is `wordStats`). Build it with
// `jco componentize` (see `sdk/js.md`).

import { write } from "warden:host/log@0.1.0";

function info(message, fields = {}) {
  write("info", message, Object.entries(fields).map(([k, v]) => [k, String(v)]));
}

export function greet(name) {
  info("greeting", { name });
  return `Hello, ${name}!`;
}

export function wordStats(text, options) {
  const ignoreCase = options?.ignoreCase ?? false;
  const top = options?.top ?? 3;
  let words = text.match(/[A-Za-z0-9_']+/g) ?? [];
  if (ignoreCase) words = words.map((w) => w.toLowerCase());
  const counts = new Map();
  for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
  const ranked = [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([word, count]) => ({ word, count }));
  return { words: words.length, top: ranked };
}

// A function whose WIT return type is `result<T, string>` returns the ok value or
// throws the error string.
export async function httpGet(url, maxBytes) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw `fetch ${url}: ${err?.message ?? err}`;
  }
  const body = new Uint8Array(await response.arrayBuffer()).slice(0, maxBytes);
  info("fetched", { url, status: response.status, bytes: body.length });
  return [response.status, new TextDecoder().decode(body)];
}
