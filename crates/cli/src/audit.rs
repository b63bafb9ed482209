//! `claimdb audit`: reads the audit log in `<data_dir>/audit` (safe while the server runs) and
//! prints the matching decisions as a table, or as the log's own JSON lines with `--json`.
//!
//! It shows the newest `--limit` matches, oldest first (like `tail`). Text that came from
//! requests (uids, paths, reasons) is printed with control characters escaped, so a crafted uid
//! cannot rewrite the operator's terminal.

use std::borrow::Cow;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use claimdb_audit::{self as audit, AuditEvent, AuditFilter};

use crate::ConfigArgs;

/// The command's options, after clap.
pub(crate) struct AuditArgs {
    pub deny: bool,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    pub uid: Option<String>,
    pub path: Option<String>,
    pub limit: usize,
    pub json: bool,
}

/// clap value parser for `--since` / `--until`.
pub(crate) fn parse_when(text: &str) -> Result<SystemTime, String> {
    audit::parse_time_spec(text, SystemTime::now()).map_err(|e| e.to_string())
}

pub(crate) fn run(config: &ConfigArgs, args: AuditArgs) -> anyhow::Result<ExitCode> {
    let config = config.load(None)?;
    let dir = audit::audit_dir(&config.data_dir);
    if let (Some(since), Some(until)) = (args.since, args.until)
        && since >= until
    {
        anyhow::bail!("--since must be before --until");
    }
    let filter = AuditFilter {
        deny_only: args.deny,
        since: args.since,
        until: args.until,
        uid: args.uid,
        path: args.path,
        limit: args.limit,
        newest_first: true,
    };
    // The library's errors already name the directory, file or line.
    let mut events = audit::query(&dir, &filter)?;
    events.reverse();
    if events.is_empty() {
        eprintln!("no audit events match");
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    let printed = if args.json {
        print_json(&mut out, &events)
    } else {
        print_table(&mut out, &events)
    };
    match printed.and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // `claimdb audit | head`: the reader has seen what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("cannot write to standard output"),
    }
}

fn print_json(out: &mut impl Write, events: &[AuditEvent]) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(512);
    for event in events {
        line.clear();
        audit::encode_line(event, &mut line);
        out.write_all(&line)?;
    }
    Ok(())
}

const HEADERS: [&str; 7] = [
    "TIME", "DECISION", "UID", "METHOD", "PATH", "RULE", "REASON",
];

fn print_table(out: &mut impl Write, events: &[AuditEvent]) -> std::io::Result<()> {
    let rows: Vec<[String; 7]> = events
        .iter()
        .map(|e| {
            [
                audit::format_time(e.time),
                e.decision.to_string(),
                shown(e.uid.as_deref()),
                shown(Some(&e.method)),
                shown(Some(&e.path)),
                shown(e.rule.as_deref()),
                shown(e.reason.as_deref()),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    write_row(out, &HEADERS.map(String::from), &widths)?;
    for row in &rows {
        write_row(out, row, &widths)?;
    }
    Ok(())
}

fn write_row(out: &mut impl Write, row: &[String; 7], widths: &[usize; 7]) -> std::io::Result<()> {
    let last = row.len() - 1;
    for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
        if i == last {
            writeln!(out, "{cell}")?;
        } else {
            // Pad by characters, not bytes, so non-ASCII uids keep the columns aligned.
            let pad = width - cell.chars().count();
            write!(out, "{cell}{:pad$}  ", "")?;
        }
    }
    Ok(())
}

/// A cell: `-` when absent, control characters escaped (`\u{1b}`, `\n`).
fn shown(text: Option<&str>) -> String {
    match text {
        None | Some("") => "-".to_string(),
        Some(text) => escape_controls(text).into_owned(),
    }
}

fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(shown(Some("alice")), "alice");
        assert_eq!(shown(None), "-");
        assert_eq!(
            shown(Some("evil\u{1b}[2J\nuid\u{7}")),
            "evil\\u{1b}[2J\\nuid\\u{7}"
        );
        assert_eq!(shown(Some("ünïcode")), "ünïcode");
    }
}
