//! Misbehaving functions for the adversarial tests.

use std::hint::black_box;

use wasip2::filesystem::types as fs;

warden_sdk::wit_bindgen::generate!({
    world: "warden-test:hostile/hostile",
    path: ["../../../wit", "wit"],
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: {
        "warden:host/log@0.1.0": warden_sdk::host::log,
        "warden:host/memory@0.1.0": warden_sdk::host::memory,
        "warden:host/models@0.1.0": warden_sdk::host::models,
    },
});

struct Hostile;

impl Guest for Hostile {
    fn ask(route: String, prompt: String, max_tokens: Option<u32>) -> Result<String, String> {
        use warden_sdk::host::models::{self, Message, Request, Role};
        let request = Request {
            route,
            messages: vec![Message {
                role: Role::User,
                content: prompt,
                tool_calls: Vec::new(),
                tool_call_id: None,
            }],
            tools: Vec::new(),
            temperature: None,
            max_tokens,
            stop: Vec::new(),
            response_format: None,
        };
        models::complete(&request)
            .map(|r| format!("{} [{}]", r.content, r.target))
            .map_err(|e| format!("{e:?}"))
    }

    fn memory_read(namespace: String, key: String) -> Result<Option<String>, String> {
        warden_sdk::host::memory::get(&namespace, &key)
            .map(|e| e.map(|e| String::from_utf8_lossy(&e.value).into_owned()))
            .map_err(|e| format!("{e:?}"))
    }

    fn memory_flood(namespace: String, key_bytes: u32, count: u32) -> Result<u32, String> {
        let key = "k".repeat(key_bytes as usize);
        for n in 0..count {
            if let Err(e) = warden_sdk::host::memory::get(&namespace, &key) {
                return Err(format!("after {n} reads: {e:?}"));
            }
        }
        Ok(count)
    }

    fn memory_list(namespace: String) -> Result<Vec<String>, String> {
        warden_sdk::host::memory::list_keys(&namespace, "", None, 100)
            .map(|page| page.keys)
            .map_err(|e| format!("{e:?}"))
    }

    fn env(name: String) -> Option<String> {
        std::env::var(name).ok()
    }

    fn env_all() -> Vec<(String, String)> {
        std::env::vars().collect()
    }

    fn args() -> Vec<String> {
        std::env::args().collect()
    }

    fn read_file(path: String) -> Result<String, String> {
        std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))
    }

    fn move_file(src: String, dst: String) -> Result<(), String> {
        std::fs::rename(&src, &dst).map_err(|e| format!("{src} -> {dst}: {e}"))
    }

    fn link_file(src: String, dst: String) -> Result<(), String> {
        std::fs::hard_link(&src, &dst).map_err(|e| format!("{src} -> {dst}: {e}"))
    }

    fn truncate_file(path: String) -> Result<(), String> {
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .map(drop)
            .map_err(|e| format!("{path}: {e}"))
    }

    fn fs_change(op: String, path: String, to: String) -> Result<(), String> {
        change(&op, &path, &to).map_err(|e| format!("{op} {path}: {}", e.name()))
    }

    fn fs_change_ignoring(op: String, path: String, to: String, count: u32) -> u32 {
        let failed = (0..count)
            .filter(|_| change(&op, &path, &to).is_err())
            .count();
        u32::try_from(failed).unwrap_or(u32::MAX)
    }

    fn read_file_loop(path: String, count: u32) -> Vec<(String, u32)> {
        let mut seen: Vec<(String, u32)> = Vec::new();
        for _ in 0..count {
            let outcome = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) => format!("error: {e}"),
            };
            match seen.iter_mut().find(|(o, _)| *o == outcome) {
                Some((_, n)) => *n += 1,
                None => seen.push((outcome, 1)),
            }
        }
        seen
    }

    fn hold_handles(count: u32) -> u32 {
        let mut held = Vec::new();
        for _ in 0..count {
            held.push(wasip2::clocks::monotonic_clock::subscribe_duration(1));
        }
        u32::try_from(black_box(held).len()).unwrap_or(u32::MAX)
    }

    fn hold_files(path: String, count: u32) -> Result<u32, String> {
        let mut held = Vec::new();
        for n in 0..count {
            match std::fs::File::open(&path) {
                Ok(file) => held.push(file),
                Err(e) => return Err(format!("after {n} open: {e}")),
            }
        }
        Ok(u32::try_from(black_box(held).len()).unwrap_or(u32::MAX))
    }

    fn write_file(path: String, content: String) -> Result<(), String> {
        std::fs::write(&path, content).map_err(|e| format!("{path}: {e}"))
    }

    fn panic(msg: String) {
        panic!("{msg}");
    }

    fn unreachable() {
        core::arch::wasm32::unreachable();
    }

    fn loop_forever() {
        let mut i: u64 = 0;
        loop {
            i = black_box(i.wrapping_add(1));
        }
    }

    fn grow_memory(mb: u32) -> u32 {
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        for _ in 0..mb {
            let mut block = vec![0u8; 1 << 20];
            // Touch every page so that the memory is really used.
            for page in block.chunks_mut(4096) {
                page[0] = 1;
            }
            blocks.push(black_box(block));
        }
        u32::try_from(blocks.len()).unwrap_or(u32::MAX)
    }

    fn recurse(depth: u32) -> u32 {
        fn down(n: u32, pad: [u64; 16]) -> u32 {
            if n == 0 {
                return black_box(pad[0]) as u32;
            }
            let mut next = black_box(pad);
            next[0] = 0;
            1 + down(black_box(n - 1), next)
        }
        down(depth, [0; 16])
    }

    fn big_output(kb: u32) -> String {
        "x".repeat(kb as usize * 1024)
    }

    fn big_error(kb: u32) -> Result<String, String> {
        Err("e".repeat(kb as usize * 1024))
    }

    fn big_bytes(kb: u32) -> Vec<u8> {
        vec![7; kb as usize * 1024]
    }

    fn log_flood(lines: u32) {
        for i in 0..lines {
            warden_sdk::log!(info, "flood line {i}"; line = i);
        }
    }
}

/// The preopen `path` is under (the longest match) and the rest of `path`.
fn under(path: &str) -> Result<(fs::Descriptor, String), fs::ErrorCode> {
    wasip2::filesystem::preopens::get_directories()
        .into_iter()
        .filter_map(|(dir, name)| {
            let rest = path.strip_prefix(name.trim_end_matches('/'))?;
            let rest = rest.strip_prefix('/').or(rest.is_empty().then_some(""))?;
            Some((name.len(), dir, rest.to_string()))
        })
        .max_by_key(|(len, ..)| *len)
        .map(|(_, dir, rest)| (dir, if rest.is_empty() { ".".into() } else { rest }))
        .ok_or(fs::ErrorCode::NoEntry)
}

/// `fs-change`: one call of `wasi:filesystem` per `op` (see the WIT).
fn change(op: &str, path: &str, to: &str) -> Result<(), fs::ErrorCode> {
    let (dir, rest) = under(path)?;
    let seconds = || to.parse::<u64>().map_err(|_| fs::ErrorCode::Invalid);
    let at = |seconds| {
        fs::NewTimestamp::Timestamp(wasip2::clocks::wall_clock::Datetime {
            seconds,
            nanoseconds: 0,
        })
    };
    match op {
        "mkdir" => dir.create_directory_at(&rest),
        "rmdir" => dir.remove_directory_at(&rest),
        "unlink" => dir.unlink_file_at(&rest),
        "rename" => {
            let (new_dir, new_rest) = under(to)?;
            dir.rename_at(&rest, &new_dir, &new_rest)
        }
        "link" => {
            let (new_dir, new_rest) = under(to)?;
            dir.link_at(fs::PathFlags::empty(), &rest, &new_dir, &new_rest)
        }
        "symlink" => dir.symlink_at(to, &rest),
        "set-times" => dir.set_times_at(
            fs::PathFlags::empty(),
            &rest,
            at(seconds()?),
            at(seconds()?),
        ),
        "touch" => {
            let file = dir.open_at(
                fs::PathFlags::empty(),
                &rest,
                fs::OpenFlags::empty(),
                fs::DescriptorFlags::READ,
            )?;
            file.set_times(at(seconds()?), at(seconds()?))
        }
        "set-size" => {
            let open =
                |flags| dir.open_at(fs::PathFlags::empty(), &rest, fs::OpenFlags::empty(), flags);
            let file = open(fs::DescriptorFlags::READ | fs::DescriptorFlags::WRITE)
                .or_else(|_| open(fs::DescriptorFlags::READ))?;
            file.set_size(seconds()?)
        }
        _ => Err(fs::ErrorCode::Unsupported),
    }
}

export!(Hostile);
