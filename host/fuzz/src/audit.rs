//! Verification of an audit export (JSON Lines), as `warden audit verify --file FILE
//! [--checkpoint CHECKPOINT]` does it ([`warden_audit::verify_file`]). A first line
//! that reads as a [`Checkpoint`] is the checkpoint to prove against the rest. Any
//! bytes are judged, with a report or a read error, and a file with a line that is not
//! blank is never judged an empty, sound log.

use std::cell::RefCell;

use warden_audit::Checkpoint;

thread_local! {
    /// One file a thread, rewritten for each input.
    static FILE: RefCell<Option<tempfile::NamedTempFile>> = const { RefCell::new(None) };
}

pub fn audit_verify(data: &[u8]) {
    let (checkpoint, export) = match data.iter().position(|&b| b == b'\n') {
        Some(end) => match serde_json::from_slice::<Checkpoint>(&data[..end]) {
            Ok(checkpoint) => (Some(checkpoint), &data[end + 1..]),
            Err(_) => (None, data),
        },
        None => (None, data),
    };
    FILE.with_borrow_mut(|file| {
        let file = file.get_or_insert_with(|| tempfile::NamedTempFile::new().expect("a temp file"));
        std::fs::write(file.path(), export).expect("writing the export");
        let Ok((report, _)) = warden_audit::verify_file(file.path(), checkpoint.as_ref()) else {
            // Not UTF-8: a read error, which names the file.
            return;
        };
        let text = String::from_utf8_lossy(export);
        if text.lines().any(|line| !line.trim().is_empty()) {
            assert!(
                report.problem.is_some() || report.count > 0,
                "lines were judged an empty, sound log: {text:?}"
            );
        }
    });
}
