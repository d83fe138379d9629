//! Compiling a component within bounds (a compile bomb: code shaped to make the
//! compiler take minutes or gigabytes).
//!
//! Whoever may add a plugin (`warden plugin add`, an upload to `serve`) hands the host
//! code to compile in its own process, where Cranelift's time and memory grow with the
//! size of each function and the number of functions. So before compiling, the code is
//! measured with wasmparser ([`check`]): every core module the component holds, nested
//! ones included, against [`CompileLimits`]; a component past a limit is refused with
//! the limit named. Then the compile runs on a thread of its own and is waited for up
//! to [`CompileLimits::timeout`] ([`compile`]): past it the load fails at once. The
//! thread cannot be stopped, so it runs to its end in the background; the measured
//! bounds are what keep that end near.
//!
//! This module may touch the engine and the bytes; nothing else.

use std::sync::mpsc;
use std::time::Duration;

use wasmparser::{Parser, Payload};
use wasmtime::Engine;
use wasmtime::component::Component;

/// How much code Warden compiles for one component, and for how long it waits.
///
/// The defaults are well above what toolchains produce (StarlingMonkey, the engine
/// inside a JavaScript component, has 12 584 functions, 9.2 MB of code and a largest
/// function of 172 KB), and below what stalls the host: measured in a debug build,
/// 250 000 empty functions took 39 s and 1.5 GB to compile, 100 000 took 17 s and
/// 680 MB, one function of 1 MiB (350 000 values live at once) 3.6 s:
///
/// ```
/// let limits = warden_runtime::compile::CompileLimits::default();
/// assert_eq!(limits.max_function_bytes, 1 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileLimits {
    /// Most bytes of one function's body. Default: 1 MiB.
    pub max_function_bytes: usize,
    /// Most functions with a body, over all core modules. Default: 100 000.
    pub max_functions: usize,
    /// Most bytes of code (code sections), over all core modules. Default: 128 MiB.
    pub max_code_bytes: usize,
    /// Most core modules. Default: 100.
    pub max_modules: usize,
    /// How long a compile is waited for. Default: 120 s.
    pub timeout: Duration,
}

impl Default for CompileLimits {
    fn default() -> Self {
        Self {
            max_function_bytes: 1 << 20,
            max_functions: 100_000,
            max_code_bytes: 128 << 20,
            max_modules: 100,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Why a component is refused before it is compiled: what is too large, and the limit.
/// `wasm` must already be a valid component (its structure is not reported here).
pub fn check(wasm: &[u8], limits: &CompileLimits) -> Result<(), String> {
    let (mut modules, mut functions, mut code) = (0usize, 0usize, 0usize);
    let mut in_module = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        let Ok(payload) = payload else {
            // Left to the validator and the compiler, which say what is wrong.
            return Ok(());
        };
        match payload {
            Payload::ModuleSection { .. } => {
                modules += 1;
                if modules > limits.max_modules {
                    return Err(format!(
                        "it holds more than {} core modules (max_modules)",
                        limits.max_modules
                    ));
                }
            }
            Payload::CodeSectionStart { count, range, .. } => {
                in_module = modules;
                functions += count as usize;
                code += range.len();
                if functions > limits.max_functions {
                    return Err(format!(
                        "it has more than {} functions (max_functions)",
                        limits.max_functions
                    ));
                }
                if code > limits.max_code_bytes {
                    return Err(format!(
                        "it has more than {} of code (max_code_bytes)",
                        size(limits.max_code_bytes)
                    ));
                }
            }
            Payload::CodeSectionEntry(body) => {
                let len = body.range().len();
                if len > limits.max_function_bytes {
                    return Err(format!(
                        "a function of its core module {in_module} is {}, more than the {} one function may have (max_function_bytes)",
                        size(len),
                        size(limits.max_function_bytes)
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// `n` bytes for a person: `512 bytes`, `172 KiB`, `2.0 MiB`.
fn size(n: usize) -> String {
    match n {
        0..1024 => format!("{n} bytes"),
        1024..1_048_576 => format!("{} KiB", n >> 10),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

/// Compiles `wasm` on a thread of its own and waits up to `limits.timeout`.
pub fn compile(
    engine: &Engine,
    wasm: &[u8],
    limits: &CompileLimits,
) -> Result<Component, CompileError> {
    let (done, result) = mpsc::sync_channel(1);
    let (engine, wasm) = (engine.clone(), wasm.to_vec());
    std::thread::Builder::new()
        .name("warden-compile".into())
        .spawn(move || {
            // The receiver is gone when the deadline passed: nobody waits any more.
            let _ = done.send(Component::new(&engine, &wasm));
        })
        .map_err(|err| CompileError::Failed(err.into()))?;
    match result.recv_timeout(limits.timeout) {
        Ok(compiled) => compiled.map_err(|err| CompileError::Failed(err.into())),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(CompileError::Timeout(limits.timeout)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(CompileError::Failed(
            "the compiler thread ended without a result".into(),
        )),
    }
}

/// A compile that did not give a component.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The compiler refused the code, or could not run.
    #[error(transparent)]
    Failed(crate::error::BoxError),
    /// The compile outlasted the deadline.
    #[error(
        "compiling took longer than {} s, Warden's deadline for one component (a compile bomb?); the compile was abandoned",
        .0.as_secs_f64()
    )]
    Timeout(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_component_passes_and_each_limit_is_named() {
        let wasm =
            wat::parse_str("(component (core module (func nop nop) (func)) (core module (func)))")
                .unwrap();
        assert_eq!(check(&wasm, &CompileLimits::default()), Ok(()));
        let tight = |limits: CompileLimits| check(&wasm, &limits).unwrap_err();
        let one = CompileLimits {
            max_modules: 1,
            ..CompileLimits::default()
        };
        assert_eq!(
            tight(one),
            "it holds more than 1 core modules (max_modules)"
        );
        let two = CompileLimits {
            max_functions: 2,
            ..CompileLimits::default()
        };
        assert_eq!(tight(two), "it has more than 2 functions (max_functions)");
        let small = CompileLimits {
            max_function_bytes: 2,
            ..CompileLimits::default()
        };
        assert_eq!(
            tight(small),
            "a function of its core module 1 is 4 bytes, more than the 2 bytes one function may have (max_function_bytes)"
        );
        assert_eq!(size(172 << 10), "172 KiB");
        assert_eq!(size(3 << 20), "3.0 MiB");
    }
}
