//! The accessibility check every console page passes, run in the browser: every form
//! control has a label, every image and chart a text alternative, every link and
//! button a name; ids are unique, the page has a language, a title and one `h1`; text
//! contrast is at least 4.5:1 (3:1 for large text), computed from the colours the
//! browser rendered; and the keyboard reaches the controls in document order (no
//! positive `tabindex`), each showing a visible focus outline. And a screenshot of
//! the page, for the README.

use std::path::PathBuf;

use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::Value;

use super::browser::Browser;

/// What the page gets wrong, as sentences (none: it passes).
const AUDIT: &str = r#"
const problems = [];
const shown = (el) => el.checkVisibility ? el.checkVisibility() : !!el.getClientRects().length;
const describe = (el) => el.outerHTML.slice(0, 120);
if (!document.documentElement.lang) problems.push("no lang on <html>");
if (!document.title.trim()) problems.push("no <title>");
if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
const ids = new Map();
for (const el of document.querySelectorAll("[id]")) ids.set(el.id, (ids.get(el.id) || 0) + 1);
for (const [id, n] of ids) if (n > 1) problems.push(`id ${id} used ${n} times`);
for (const el of document.querySelectorAll("input, select, textarea")) {
  if (el.type === "hidden") continue;
  const label = (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`))
    || el.closest("label") || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
  if (!label || (label.textContent !== undefined && !label.textContent.trim())) problems.push(`no label: ${describe(el)}`);
}
for (const el of document.querySelectorAll("a[href], button, summary")) {
  if (!(el.textContent.trim() || el.getAttribute("aria-label"))) problems.push(`no accessible name: ${describe(el)}`);
}
for (const img of document.querySelectorAll("img")) if (!img.hasAttribute("alt")) problems.push(`no alt: ${describe(img)}`);
for (const svg of document.querySelectorAll("svg")) {
  if (svg.closest("svg") !== svg) continue;
  if (svg.getAttribute("role") !== "img" || !(svg.getAttribute("aria-label") || svg.querySelector("title")))
    problems.push(`a chart without role=img and a label: ${describe(svg)}`);
}
for (const el of document.querySelectorAll("[tabindex]")) if (el.tabIndex > 0) problems.push(`positive tabindex: ${describe(el)}`);
const rgba = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
  const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(parseFloat); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
const background = (el) => { const layers = [];
  for (let e = el; e; e = e.parentElement) { const c = rgba(getComputedStyle(e).backgroundColor);
    if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
  let out = [255, 255, 255];
  for (const c of layers.reverse()) out = out.map((v, i) => c[i] * c[3] + v * (1 - c[3]));
  return out; };
for (const el of document.querySelectorAll("body *")) {
  if (el.closest("svg") || !shown(el)) continue;
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own) continue;
  const style = getComputedStyle(el);
  const r = el.getBoundingClientRect();
  if (r.right < 0 || r.bottom < 0) continue; // off screen until focused (the skip link)
  const bg = background(el);
  const fg = rgba(style.color);
  const color = fg[3] < 1 ? fg.slice(0, 3).map((v, i) => v * fg[3] + bg[i] * (1 - fg[3])) : fg;
  const [a, b] = [lum(color), lum(bg)];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const size = parseFloat(style.fontSize);
  const large = size >= 24 || (parseInt(style.fontWeight, 10) >= 700 && size >= 18.66);
  if (ratio < (large ? 3 : 4.5))
    problems.push(`contrast ${ratio.toFixed(2)}:1 of ${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 40)}"`);
}
return problems;
"#;

/// The element focused now: its index among the visible focusable elements in
/// document order, whether it shows a focus outline, and what it is.
const FOCUSED: &str = r#"
const shown = (el) => el.checkVisibility ? el.checkVisibility() : !!el.getClientRects().length;
const all = [...document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]")]
  .filter((el) => shown(el) && !el.disabled && el.tabIndex >= 0);
const el = document.activeElement;
const style = getComputedStyle(el);
const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
return { index: all.indexOf(el), count: all.length, outline, what: el.outerHTML.slice(0, 100) };
"#;

/// Runs the checks on the page shown, and saves its screenshot as `name`.
pub(crate) async fn check(browser: &Browser, name: &str) {
    let problems = browser.js(AUDIT, vec![]).await;
    let problems: Vec<&str> = problems
        .as_array()
        .map(|p| p.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        problems.is_empty(),
        "accessibility of the {name} page ({}):\n{}",
        browser.url().await,
        problems.join("\n")
    );
    keyboard(browser, name).await;
    screenshot(browser, name).await;
}

/// Tab through the first controls: document order, each with a visible outline.
async fn keyboard(browser: &Browser, name: &str) {
    browser
        .js(
            "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);",
            vec![],
        )
        .await;
    let count = browser.js(FOCUSED, vec![]).await["count"]
        .as_u64()
        .unwrap_or(0);
    for expected in 0..count.min(10) {
        let tab = char::from(Key::Tab);
        let press = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: tab })
            .then(KeyAction::Up { value: tab });
        browser.client.perform_actions(press).await.unwrap();
        let focused = browser.js(FOCUSED, vec![]).await;
        assert_eq!(
            focused["index"].as_u64(),
            Some(expected),
            "on the {name} page, Tab press {} focused {} (expected the focusable element #{expected} in document order)",
            expected + 1,
            focused["what"]
        );
        assert_eq!(
            focused["outline"], true,
            "on the {name} page, the focused {} shows no focus outline",
            focused["what"]
        );
    }
    browser
        .js(
            "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);",
            vec![],
        )
        .await;
}

/// Where the screenshots go: `target/console-screenshots/`, and with
/// `WARDEN_UPDATE_SCREENSHOTS=1` also `docs/console/` (what the README shows).
async fn screenshot(browser: &Browser, name: &str) {
    let png = browser.client.screenshot().await.expect("a screenshot");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut dirs = vec![root.join("target/console-screenshots")];
    if std::env::var("WARDEN_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        dirs.push(root.join("docs/console"));
    }
    for dir in dirs {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
    }
}
