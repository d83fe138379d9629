//! A directory or a file beside a granted path swapped for a symbolic link to the
//! outside while a plugin opens files through it in a loop (catalog item 27, a
//! time-of-check to time-of-use race): every open is resolved beneath the granted
//! directory one component at a time (cap-primitives), so no interleaving of the swap
//! reaches a file outside the grant. The swapper here is a host thread, as another
//! process (or a plugin with a write grant beside this one) would be.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use warden::grant::{Access, FsGrant, Grant};
use warden::limits::Limits;
use warden_tests::guests;

const INSIDE: &str = "inside the grant";
const SECRET: &str = "SECRET: outside the grant";
const READS_PER_CALL: u32 = 2000;

/// Swaps `path` (a directory or a file) for a link to `outside`, and back, until
/// `stop`; the links alternate between an absolute and a relative target.
fn swapper(
    path: &Path,
    outside: &Path,
    relative: &str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    let (path, outside, relative) = (
        path.to_path_buf(),
        outside.to_path_buf(),
        relative.to_string(),
    );
    std::thread::spawn(move || {
        let real = path.with_extension("real");
        let mut swaps = 0u64;
        while !stop.load(Ordering::Relaxed) {
            std::fs::rename(&path, &real).unwrap();
            if swaps.is_multiple_of(2) {
                std::os::unix::fs::symlink(&outside, &path).unwrap();
            } else {
                std::os::unix::fs::symlink(&relative, &path).unwrap();
            }
            std::thread::yield_now();
            std::fs::remove_file(&path).unwrap();
            std::fs::rename(&real, &path).unwrap();
            std::thread::yield_now();
            swaps += 1;
        }
        swaps
    })
}

/// Each distinct outcome of a `read-file-loop` call with how many reads had it.
fn outcomes(value: &Value) -> Vec<(String, u64)> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_string(),
                pair[1].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_swapped_in_beside_the_grant_during_opens_never_reaches_outside() {
    let root = tempfile::tempdir().unwrap();
    let granted = root.path().join("granted");
    let outside = root.path().join("outside");
    std::fs::create_dir_all(granted.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(granted.join("sub/file.txt"), INSIDE).unwrap();
    std::fs::write(granted.join("leaf.txt"), INSIDE).unwrap();
    std::fs::write(outside.join("file.txt"), SECRET).unwrap();
    std::fs::write(outside.join("leaf.txt"), SECRET).unwrap();

    let grant = Grant {
        fs: vec![FsGrant {
            host: granted.clone(),
            guest: "/g".into(),
            access: Access::Read,
        }],
        limits: Limits {
            timeout_ms: 60_000,
            ..Limits::default()
        },
        ..Grant::default()
    };
    let hostile = crate::load_granted("hostile", guests::HOSTILE, grant);

    // A directory on the path swapped for a link to a directory outside, and a file
    // swapped for a link to a file outside.
    let cases = [
        (
            "/g/sub/file.txt",
            granted.join("sub"),
            outside.clone(),
            "../outside",
        ),
        (
            "/g/leaf.txt",
            granted.join("leaf.txt"),
            outside.join("leaf.txt"),
            "../outside/leaf.txt",
        ),
    ];
    for (guest_path, swapped, target, relative) in cases {
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = swapper(&swapped, &target, relative, stop.clone());
        let (mut inside, mut refused, mut missing) = (0, 0, 0);
        for _ in 0..5 {
            let args = json!({"path": guest_path, "count": READS_PER_CALL});
            let value = crate::runtime()
                .call(&hostile, "read-file-loop", &args)
                .await
                .unwrap_or_else(|err| panic!("{guest_path}: {err}"));
            for (outcome, n) in outcomes(&value) {
                assert!(
                    !outcome.contains("SECRET"),
                    "{guest_path}: a read reached outside the grant ({n} times): {outcome}"
                );
                if outcome == INSIDE {
                    inside += n;
                } else if outcome.contains("Operation not permitted") {
                    // The link met during resolution: refused, as it leads outside.
                    refused += n;
                } else {
                    // Between the renames the path is not there at all.
                    assert!(outcome.contains("No such file"), "{guest_path}: {outcome}");
                    missing += n;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let swaps = swaps.join().unwrap();
        eprintln!(
            "{guest_path}: {swaps} swaps; reads: {inside} inside, {refused} refused at the link, {missing} missing"
        );
        // The race really ran: reads saw both states of the path.
        assert!(swaps > 10, "{guest_path}: only {swaps} swaps");
        assert!(inside > 0, "{guest_path}: no read succeeded");
        assert!(refused > 0, "{guest_path}: no read met the swapped link");
        assert_eq!(inside + refused + missing, 5 * u64::from(READS_PER_CALL));
    }

    // The host then serves a normal call.
    std::fs::write(granted.join("leaf.txt"), INSIDE).unwrap();
    let read = crate::runtime()
        .call(&hostile, "read-file", &json!({"path": "/g/leaf.txt"}))
        .await;
    assert_eq!(read.unwrap(), json!(INSIDE));
}
