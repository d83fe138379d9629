//! The fuzz targets on stable, as CI's smoke run: every file of each target's corpus
//! (`fuzz/corpus/<target>/`), then mutations of them (bits flipped, bytes set, tokens
//! inserted, ranges cut, doubled or spliced from another file), the same on every run.
//! `WARDEN_FUZZ_MUTATIONS=N` sets how many a target (default: 2 000 to 20 000, fewer
//! where each input compiles a component or calls one). A coverage-guided
//! long run is `cargo fuzz run <target>` in `fuzz/` (see the README's Security
//! section). An input that fails is printed and written to `target/fuzz-failures/`;
//! put it in the corpus (it then runs first, every time) and fix what it found.

use std::path::{Path, PathBuf};

/// Runs `target`'s corpus, then `mutations` mutated inputs (or `WARDEN_FUZZ_MUTATIONS`).
fn replay(target: &str, mutations: usize) {
    let run = warden_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, run)| *run)
        .expect("a target");
    let corpus = corpus(target);
    assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ is empty");
    for input in &corpus {
        check(target, run, input);
    }
    let mutations = std::env::var("WARDEN_FUZZ_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(mutations);
    let mut rng = Rng::new(target);
    for _ in 0..mutations {
        let input = mutate(&mut rng, &corpus);
        check(target, run, &input);
    }
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| std::fs::read(path).expect("a corpus file"))
        .collect()
}

/// Runs `input`; on a panic, shows it and keeps it in `target/fuzz-failures/`.
fn check(target: &str, run: warden_fuzz::Target, input: &[u8]) {
    let result = std::panic::catch_unwind(|| run(input));
    if let Err(panic) = result {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures");
        let name = format!("{target}-{:016x}", fnv(input));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(&name), input);
        eprintln!(
            "{target} failed on {:?} (kept as target/fuzz-failures/{name})",
            String::from_utf8_lossy(input)
        );
        std::panic::resume_unwind(panic);
    }
}

/// Words that the inputs are made of, inserted whole.
const TOKENS: &[&str] = &[
    "\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "=",
    "\n",
    "\n\n",
    "[[",
    "]]",
    ".",
    "*",
    "-",
    "0",
    "-1",
    "255",
    "65536",
    "4294967296",
    "18446744073709551616",
    "1e999",
    "2.5",
    "null",
    "true",
    "\"\"",
    "\\u0000",
    "\\ud800",
    "{}",
    "[]",
    "http://",
    "https://",
    "*.",
    "[::1]",
    ":0",
    ":65536",
    "%",
    "127.0.0.1",
    "::ffff:10.0.0.1",
    "\"tag\"",
    "\"val\"",
    "\"ok\"",
    "\"err\"",
    "\"id\"",
    "\"method\"",
    "\"params\"",
    "\"jsonrpc\":\"2.0\"",
    "\"tools/call\"",
    "\"arguments\"",
    "\"seq\"",
    "\"hash\"",
    "\"prev\"",
    "🙂",
    "\u{0}",
    "\r\n",
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut input = corpus[rng.below(corpus.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(7) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                input.splice(at..at, token.bytes());
            }
            3 => {
                let end = (at + rng.below(16)).min(input.len());
                input.drain(at..end);
            }
            4 => {
                let end = (at + rng.below(32)).min(input.len());
                let copy = input[at..end].to_vec();
                input.splice(at..at, copy);
            }
            5 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            _ => input.truncate(at),
        }
    }
    input
}

/// xorshift64*, seeded from the target's name: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn new(seed: &str) -> Self {
        Self(fnv(seed.as_bytes()) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn json_to_wit() {
    replay("json_to_wit", 2000);
}

#[test]
fn grant() {
    replay("grant", 20000);
}

#[test]
fn manifest() {
    replay("manifest", 20000);
}

#[test]
fn config() {
    replay("config", 5000);
}

#[test]
fn allow_list() {
    replay("allow_list", 20000);
}

#[test]
fn audit_verify() {
    replay("audit_verify", 3000);
}

#[test]
fn mcp_decode() {
    replay("mcp_decode", 5000);
}

#[test]
fn http_decode() {
    replay("http_decode", 3000);
}
