//! Streaming the lines of one log file, front to back or back to front, handing each matching
//! event to a callback until it says stop. Memory is one buffer, never the file.
//!
//! Torn writes: the bytes after a file's last newline, and a final complete line that does not
//! parse, are what a crash (or the writer appending right now) leaves, and are skipped. A line
//! that does not parse anywhere else is corruption and is reported with its line number.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::encode;
use super::event::{decode_line, system_time_from_micros};
use super::files::LogFile;
use super::query::AuditFilter;
use super::{AuditError, AuditEvent};

/// How much a backward scan reads at a time.
const CHUNK: usize = 64 * 1024;

/// Oldest line first.
pub(crate) fn forward(
    file: &LogFile,
    filter: &AuditFilter,
    mut found: impl FnMut(AuditEvent) -> bool,
) -> Result<(), AuditError> {
    let Some(handle) = open(&file.path)? else {
        return Ok(());
    };
    let mut reader = BufReader::with_capacity(256 * 1024, handle);
    let mut line = Vec::with_capacity(512);
    let mut number = 0u64;
    let mut bad: Option<(u64, String)> = None;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| AuditError::io("cannot read", &file.path, &e))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        // A bad line followed by another line was not the torn end.
        if let Some((line, message)) = bad.take() {
            return Err(corrupt(&file.path, line, message));
        }
        let Some(complete) = line.strip_suffix(b"\n") else {
            return Ok(());
        };
        if !may_match(complete, filter) {
            continue;
        }
        match decode_line(complete) {
            Ok(event) => {
                if filter.matches(&event) && !found(event) {
                    return Ok(());
                }
            }
            Err(message) => bad = Some((number, message)),
        }
    }
}

/// Newest line first: reads the file from its end in chunks, so taking the last few events of a
/// large file costs a few chunks.
pub(crate) fn backward(
    file: &LogFile,
    filter: &AuditFilter,
    mut found: impl FnMut(AuditEvent) -> bool,
) -> Result<(), AuditError> {
    let Some(mut handle) = open(&file.path)? else {
        return Ok(());
    };
    let read_error = |e: std::io::Error| AuditError::io("cannot read", &file.path, &e);
    let mut pos = handle.metadata().map_err(read_error)?.len();
    let mut chunk = vec![0u8; CHUNK];
    let mut buf = Vec::with_capacity(CHUNK + 1024);
    // The bytes after `pos` up to the last line boundary seen: the end of a line whose start is
    // still ahead (earlier in the file).
    let mut pending: Vec<u8> = Vec::new();
    // Whether the file's last newline has been passed (what follows it is a torn line).
    let mut past_end = false;
    // The next complete line is the file's last one, which may be torn.
    let mut last_line = true;
    let mut handle_line = |line: &[u8], offset: u64| -> Result<bool, AuditError> {
        let is_last = std::mem::take(&mut last_line);
        if !may_match(line, filter) {
            return Ok(true);
        }
        match decode_line(line) {
            Ok(event) => Ok(!filter.matches(&event) || found(event)),
            Err(_) if is_last => Ok(true),
            Err(message) => Err(corrupt(
                &file.path,
                line_number_at(&file.path, offset),
                message,
            )),
        }
    };
    while pos > 0 {
        let n = CHUNK.min(usize::try_from(pos).unwrap_or(CHUNK));
        pos -= n as u64;
        handle
            .seek(SeekFrom::Start(pos))
            .and_then(|_| handle.read_exact(&mut chunk[..n]))
            .map_err(read_error)?;
        buf.clear();
        buf.extend_from_slice(&chunk[..n]);
        buf.extend_from_slice(&pending);
        let mut end = buf.len();
        for newline in memchr::memrchr_iter(b'\n', &buf) {
            if past_end {
                let start = newline + 1;
                if !handle_line(&buf[start..end], pos + start as u64)? {
                    return Ok(());
                }
            }
            past_end = true;
            end = newline;
        }
        pending.clear();
        pending.extend_from_slice(&buf[..end]);
    }
    // The file's first line (unless the file holds no newline at all: one torn line).
    if past_end {
        handle_line(&pending, 0)?;
    }
    Ok(())
}

/// A cheap look at a line before parsing it in full: false only when the line is certainly
/// outside `filter`. It relies on the writer's fixed layout (`time` first, then the decision as
/// `,"decision":"allow"`); a line of any other shape is left to the full parse. Since JSON
/// strings escape `"`, that sequence cannot occur inside a value.
fn may_match(line: &[u8], filter: &AuditFilter) -> bool {
    if (filter.since.is_some() || filter.until.is_some())
        && let Some(micros) = encode::line_time(line)
    {
        // Compared as times, not microseconds: a bound may fall between two microseconds.
        let time = system_time_from_micros(micros);
        if filter.since.is_some_and(|since| time < since)
            || filter.until.is_some_and(|until| time >= until)
        {
            return false;
        }
    }
    if filter.deny_only && memchr::memmem::find(line, b",\"decision\":\"allow\"").is_some() {
        return false;
    }
    true
}

/// `None` when the file is gone: retention deleted it since it was listed, and it held only
/// events older than every remaining file's.
fn open(path: &Path) -> Result<Option<File>, AuditError> {
    match File::open(path) {
        Ok(handle) => Ok(Some(handle)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuditError::io("cannot open", path, &e)),
    }
}

fn corrupt(path: &Path, line: u64, message: String) -> AuditError {
    AuditError::Corrupt {
        file: path.to_path_buf(),
        line,
        message,
    }
}

/// The 1-based line number of the line starting at byte `offset` (error path only: reads the
/// file up to there). 0 if the file cannot be read.
fn line_number_at(path: &Path, offset: u64) -> u64 {
    let Ok(file) = File::open(path) else { return 0 };
    let mut reader = BufReader::new(file.take(offset));
    let mut newlines = 0u64;
    loop {
        let Ok(bytes) = reader.fill_buf() else {
            return 0;
        };
        if bytes.is_empty() {
            return newlines + 1;
        }
        newlines += memchr::memchr_iter(b'\n', bytes).count() as u64;
        let n = bytes.len();
        reader.consume(n);
    }
}
