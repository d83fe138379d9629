//! `warden plugin new NAME --lang rust|python|js` and `warden plugin build [DIR]`: a
//! plugin project from a template, and its build with the language's toolchain.
//!
//! A project is `wit/world.wit` (its world, which includes `warden:plugin/tool`),
//! `wit/deps/` (Warden's packages, as `warden wit export` writes them), a sample tool,
//! `warden.toml` and a README. `build` refreshes `wit/deps/`, runs the toolchain, embeds
//! the WIT docs (`package-docs`) and writes `NAME.wasm` beside `warden.toml`, so that
//! `warden plugin add NAME.wasm` takes it as it is. Touches only the project directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};
use warden::manifest::Manifest;

use super::{CliResult, Failure};

/// componentize-py release the Python template and tests are built with.
pub(crate) const COMPONENTIZE_PY: &str = "0.25.1";
/// jco and componentize-js releases the JavaScript template is built with.
pub(crate) const JCO: &str = "1.35.0";
pub(crate) const COMPONENTIZE_JS: &str = "0.23.0";

/// A plugin project's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Lang {
    Rust,
    Python,
    Js,
}

const WORLD: &str = include_str!("../../templates/world.wit");
const MANIFEST: &str = include_str!("../../templates/warden.toml");
const README: &str = include_str!("../../templates/README.md");

/// The files of a new project: path and contents, `{{name}}` still in them.
fn files(lang: Lang) -> Vec<(&'static str, &'static str)> {
    let mut files = vec![("wit/world.wit", WORLD), ("warden.toml", MANIFEST)];
    files.extend(match lang {
        Lang::Rust => [
            (
                "Cargo.toml",
                include_str!("../../templates/rust/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../../templates/rust/src/lib.rs"),
            ),
            (".gitignore", include_str!("../../templates/rust/gitignore")),
        ],
        Lang::Python => [
            ("app.py", include_str!("../../templates/python/app.py")),
            (
                ".gitignore",
                include_str!("../../templates/python/gitignore"),
            ),
            ("", ""),
        ],
        Lang::Js => [
            ("app.js", include_str!("../../templates/js/app.js")),
            (
                "package.json",
                include_str!("../../templates/js/package.json"),
            ),
            (".gitignore", include_str!("../../templates/js/gitignore")),
        ],
    });
    files.retain(|(path, _)| !path.is_empty());
    files
}

/// The README's language-specific parts.
fn readme(lang: Lang) -> String {
    let (language, source_row, needs, install, build, add_tool) = match lang {
        Lang::Rust => (
            "Rust",
            "`Cargo.toml`, `src/lib.rs` | the crate; each export is a method of `Guest`".to_string(),
            "Rust with the `wasm32-wasip2` target (`rustup target add wasm32-wasip2`)".to_string(),
            String::new(),
            "cargo build --target wasm32-wasip2 --release",
            "implement it as a method of `Guest` in `src/lib.rs`",
        ),
        Lang::Python => (
            "Python",
            "`app.py` | the tools: methods of `WitWorld` (`word-count` is `word_count`)".to_string(),
            format!("Python 3.10+ and componentize-py {COMPONENTIZE_PY}"),
            format!("pip install componentize-py=={COMPONENTIZE_PY}\n"),
            "componentize-py -d wit -w WORLD componentize app -o NAME.wasm",
            "a method of the same name (snake_case) on `WitWorld` in `app.py`",
        ),
        Lang::Js => (
            "JavaScript",
            "`app.js`, `package.json` | the tools: exported functions (`word-count` is `wordCount`); the toolchain".to_string(),
            format!("Node.js 18+; `npm install` brings jco {JCO} and componentize-js {COMPONENTIZE_JS}"),
            "npm install\n".to_string(),
            "jco componentize app.js --wit wit --world-name WORLD --out NAME.wasm",
            "an exported function of the same name (camelCase) in `app.js`",
        ),
    };
    README
        .replace("{{language}}", language)
        .replace("{{source_row}}", &source_row)
        .replace("{{needs}}", &needs)
        .replace("{{install}}", &install)
        .replace("{{build_command}}", build)
        .replace("{{add_tool}}", add_tool)
}

/// A plugin name that is also a WIT identifier and a crate name: `weather`, `my-tool2`.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.split('-').all(|part| {
            part.starts_with(|c: char| c.is_ascii_lowercase())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !ok {
        bail!(
            "{name:?} is not a plugin name for a template: use lowercase letters and digits in words joined by `-`, each word starting with a letter (e.g. `weather`, `pdf-tools`)"
        );
    }
    Ok(())
}

pub(crate) fn new(name: &str, lang: Lang, dir: Option<PathBuf>) -> CliResult {
    check_name(name).map_err(Failure::usage)?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists()
        && dir
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Failure::usage(anyhow::anyhow!(
            "{} exists and is not empty; choose another --dir",
            dir.display()
        )));
    }
    let mut all = files(lang);
    let readme = readme(lang);
    all.push(("README.md", &readme));
    for (path, text) in all {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, text.replace("{{name}}", name))
            .with_context(|| format!("writing {}", target.display()))?;
    }
    warden::wit::export(&dir.join("wit/deps"))?;
    println!("created {} ({lang:?} plugin {name})", dir.display());
    println!("next:");
    if lang == Lang::Js {
        println!("  cd {} && npm install", dir.display());
        println!("  warden plugin build");
    } else {
        println!("  warden plugin build {}", dir.display());
    }
    println!(
        "  warden plugin add {}",
        dir.join(format!("{name}.wasm")).display()
    );
    println!("  warden call {name}/hello --input '{{\"name\": \"Ada\"}}'");
    Ok(())
}

/// Which toolchain builds the project in `dir`.
fn detect(dir: &Path) -> anyhow::Result<Lang> {
    if dir.join("Cargo.toml").is_file() {
        Ok(Lang::Rust)
    } else if dir.join("app.py").is_file() {
        Ok(Lang::Python)
    } else if dir.join("app.js").is_file() {
        Ok(Lang::Js)
    } else {
        bail!(
            "{} is not a plugin project: no Cargo.toml (Rust), app.py (Python) or app.js (JavaScript); start one with `warden plugin new NAME --lang rust|python|js`",
            dir.display()
        )
    }
}

/// The one world of the project's own package in `wit/`.
fn world_name(wit: &Path) -> anyhow::Result<String> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_dir(wit)
        .with_context(|| format!("parsing WIT in {}", wit.display()))?;
    let worlds: Vec<&String> = resolve.packages[package].worlds.keys().collect();
    match worlds.as_slice() {
        [one] => Ok((*one).clone()),
        _ => bail!(
            "{} should define exactly one world (found {}): the plugin's",
            wit.join("world.wit").display(),
            worlds.len()
        ),
    }
}

/// `program` on `PATH` (or the first of `extra` that exists).
fn find_program(program: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    if let Some(found) = extra.iter().find(|p| p.is_file()) {
        return Some(found.clone());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn run(mut cmd: Command, what: &str) -> anyhow::Result<()> {
    eprintln!("running {cmd:?}");
    // The toolchain's chatter goes to stderr; stdout is for what was built.
    cmd.stdout(std::io::stderr());
    let status = cmd.status().with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status}); its errors are above");
    }
    Ok(())
}

/// Builds the project in `dir`; returns the component's path.
pub(crate) fn build(dir: &Path) -> CliResult<PathBuf> {
    let lang = detect(dir).map_err(Failure::usage)?;
    let manifest_path = dir.join(warden::manifest::FILE_NAME);
    let manifest = Manifest::read(&manifest_path).map_err(Failure::usage)?;
    let Some(name) = manifest.name.clone() else {
        return Err(Failure::usage(anyhow::anyhow!(
            "{} has no `name`; the component is written as NAME.wasm",
            manifest_path.display()
        )));
    };
    let wit = dir.join("wit");
    warden::wit::export(&wit.join("deps"))?;
    let world = world_name(&wit).map_err(Failure::usage)?;
    let out = dir.join(format!("{name}.wasm"));
    let started = Instant::now();
    let built = match lang {
        Lang::Rust => {
            let cargo = find_program("cargo", &[]).ok_or_else(|| {
                Failure::usage(anyhow::anyhow!(
                    "cargo is not installed: install Rust (https://rustup.rs), then `rustup target add wasm32-wasip2`"
                ))
            })?;
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "--target", "wasm32-wasip2", "--release"])
                .current_dir(dir);
            run(cmd, "cargo build").map_err(|e| {
                e.context("building the Rust plugin (is the target installed? `rustup target add wasm32-wasip2`)")
            })?;
            let krate = crate_name(&dir.join("Cargo.toml"))?;
            let target_dir = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .map(|t| if t.is_absolute() { t } else { dir.join(t) })
                .unwrap_or_else(|| dir.join("target"));
            target_dir
                .join("wasm32-wasip2/release")
                .join(format!("{}.wasm", krate.replace('-', "_")))
        }
        Lang::Python => {
            let tool = find_program("componentize-py", &[]).ok_or_else(|| {
                Failure::usage(anyhow::anyhow!(
                    "componentize-py is not installed (not on PATH): `pip install componentize-py=={COMPONENTIZE_PY}` (in a virtualenv, or with --user), then build again"
                ))
            })?;
            let mut cmd = Command::new(tool);
            cmd.args(["-d", "wit", "-w", &world, "componentize", "app", "-o"])
                .arg(format!("{name}.wasm"))
                .current_dir(dir);
            run(cmd, "componentize-py")?;
            out.clone()
        }
        Lang::Js => {
            let local = dir.join("node_modules/.bin/jco");
            let tool = find_program("jco", &[local]).ok_or_else(|| {
                Failure::usage(anyhow::anyhow!(
                    "jco is not installed: run `npm install` in {} (package.json pins @bytecodealliance/jco {JCO} and @bytecodealliance/componentize-js {COMPONENTIZE_JS}), then build again",
                    dir.display()
                ))
            })?;
            let mut cmd = Command::new(tool);
            cmd.args([
                "componentize",
                "app.js",
                "--wit",
                "wit",
                "--world-name",
                &world,
            ])
            .args(["--out", &format!("{name}.wasm")])
            .current_dir(dir);
            run(cmd, "jco componentize")?;
            out.clone()
        }
    };
    let wasm = std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    let docs = warden_build::package_docs(None, &wit)?;
    let wasm = warden_build::inject_package_docs(&wasm, &docs)?;
    std::fs::write(&out, &wasm).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "built {} ({:.1} MiB, {:.1} s)",
        out.display(),
        wasm.len() as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );
    println!("next: warden plugin add {}", out.display());
    Ok(out)
}

fn crate_name(cargo_toml: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(cargo_toml)
        .with_context(|| format!("reading {}", cargo_toml.display()))?;
    let doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", cargo_toml.display()))?;
    doc.get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .with_context(|| format!("{} has no [package] name", cargo_toml.display()))
}
