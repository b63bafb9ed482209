//! The backup file of `claimdb export` / `claimdb import`: JSON lines.
//!
//! Version 2, written today:
//! 1. a header, `{"claimdb_backup":2,"created":"…","source":"…","claimdb":"<version>"}`;
//! 2. the issuer's key ring when there is one, `{"key_ring":"<the key file's JSON text>"}` —
//!    the private signing keys, kept byte for byte;
//! 3. every system record, `{"namespace":"users","key":"alice","value":"…"}`, whatever its
//!    namespace (users, custom claims, revocations, the admin key's hash, sessions, stored
//!    rules, and namespaces added later);
//! 4. every document, `{"path","data","create_time","update_time","version"}` (the shape the
//!    HTTP API returns);
//! 5. a last line `{"end":{"documents":N,"records":M,"key_ring":true}}`, whose counts show that
//!    the file was not cut short.
//!
//! Version 1 (no header) is document lines only: what `export` wrote before, or lines made by
//! hand (`path` and `data` required). It is still read.

use anyhow::{Context, bail};
use claimdb_model::{DocPath, Timestamp, json};
use claimdb_store::{Document, Record};
use serde_json::{Map, Value as Json, json};

/// The format version `export` writes; `import` reads it and version 1.
pub(crate) const VERSION: u64 = 2;

/// What the last line of a version 2 file counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct End {
    pub documents: u64,
    pub records: u64,
    pub key_ring: bool,
}

/// One line of a version 2 file after the header.
#[derive(Debug, PartialEq)]
pub(crate) enum Entry {
    KeyRing(String),
    Record(Record),
    Document(Document),
    End(End),
}

pub(crate) fn header_line(source: &str, created: Timestamp) -> Json {
    json!({
        "claimdb_backup": VERSION,
        "created": created.to_string(),
        "source": source,
        "claimdb": env!("CARGO_PKG_VERSION"),
    })
}

/// The format version a first line declares: `Some` for a header, `None` for a line that is
/// not one (a version 1 file). A header of a version this claimdb cannot read is an error.
pub(crate) fn parse_header(line: &str) -> anyhow::Result<Option<u64>> {
    let Ok(Json::Object(object)) = serde_json::from_str::<Json>(line) else {
        return Ok(None);
    };
    let Some(version) = object.get("claimdb_backup") else {
        return Ok(None);
    };
    match version.as_u64() {
        Some(v) if v == VERSION => Ok(Some(v)),
        Some(v) if v > VERSION => bail!(
            "this is a version {v} backup, made by a newer claimdb; this one reads versions 1 \
             and {VERSION}"
        ),
        _ => bail!("\"claimdb_backup\" must be the format version, {VERSION}"),
    }
}

pub(crate) fn key_ring_line(text: &str) -> Json {
    json!({ "key_ring": text })
}

pub(crate) fn record_line(record: &Record) -> Json {
    json!({ "namespace": record.namespace, "key": record.key, "value": record.value })
}

pub(crate) fn end_line(end: &End) -> Json {
    json!({ "end": { "documents": end.documents, "records": end.records, "key_ring": end.key_ring } })
}

/// Parses one line of a version 2 file (after the header); `now` as in [`from_line`].
pub(crate) fn parse_entry(line: &str, now: Timestamp) -> anyhow::Result<Entry> {
    let value: Json = serde_json::from_str(line).context("not valid JSON")?;
    let Json::Object(object) = value else {
        bail!("a line must be a JSON object")
    };
    if object.contains_key("path") {
        return Ok(Entry::Document(document(object, now)?));
    }
    if let Some(text) = object.get("key_ring") {
        only(&object, &["key_ring"])?;
        let text = text.as_str().context("\"key_ring\" must be a string")?;
        return Ok(Entry::KeyRing(text.to_owned()));
    }
    if let Some(end) = object.get("end") {
        only(&object, &["end"])?;
        let Json::Object(end) = end else {
            bail!("\"end\" must be an object")
        };
        only(end, &["documents", "records", "key_ring"])?;
        let count = |key: &str| {
            end.get(key)
                .and_then(Json::as_u64)
                .with_context(|| format!("\"end\" needs {key:?}, a count"))
        };
        return Ok(Entry::End(End {
            documents: count("documents")?,
            records: count("records")?,
            key_ring: end
                .get("key_ring")
                .and_then(Json::as_bool)
                .context("\"end\" needs \"key_ring\", true or false")?,
        }));
    }
    if object.contains_key("namespace") {
        only(&object, &["namespace", "key", "value"])?;
        let text = |key: &str| -> anyhow::Result<String> {
            let s = object
                .get(key)
                .and_then(Json::as_str)
                .with_context(|| format!("a record needs {key:?}, a string"))?;
            Ok(s.to_owned())
        };
        let (namespace, key) = (text("namespace")?, text("key")?);
        for (what, s) in [("namespace", &namespace), ("key", &key)] {
            if s.is_empty() || s.len() > 1024 {
                bail!("a record {what} must be 1 to 1024 bytes");
            }
        }
        return Ok(Entry::Record(Record {
            namespace,
            key,
            value: text("value")?,
        }));
    }
    bail!("not a document, record, key ring or end line")
}

fn only(object: &Map<String, Json>, allowed: &[&str]) -> anyhow::Result<()> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => bail!("unknown key {unknown:?}"),
        None => Ok(()),
    }
}

pub(crate) fn to_line(doc: &Document) -> Json {
    json!({
        "path": doc.path.as_str(),
        "data": json::encode_document(&doc.data),
        "create_time": doc.create_time.to_string(),
        "update_time": doc.update_time.to_string(),
        "version": doc.version,
    })
}

/// Parses one document line; `now` fills missing times, and a missing version becomes 1.
pub(crate) fn from_line(line: &str, now: Timestamp) -> anyhow::Result<Document> {
    let value: Json = serde_json::from_str(line).context("not valid JSON")?;
    let Json::Object(object) = value else {
        bail!("a line must be a JSON object")
    };
    document(object, now)
}

fn document(object: Map<String, Json>, now: Timestamp) -> anyhow::Result<Document> {
    only(
        &object,
        &["path", "data", "create_time", "update_time", "version"],
    )?;
    let path = object
        .get("path")
        .and_then(Json::as_str)
        .context("\"path\" (a string) is required")?;
    let path = DocPath::parse(path)?;
    let data = json::decode_document(
        object
            .get("data")
            .context("\"data\" (an object) is required")?,
    )?;
    json::check_document_size(&data)?;
    let time = |key: &str| -> anyhow::Result<Timestamp> {
        match object.get(key) {
            None => Ok(now),
            Some(Json::String(s)) => Ok(Timestamp::parse(s)?),
            Some(_) => bail!("{key:?} must be an RFC 3339 string"),
        }
    };
    let version = match object.get("version") {
        None => 1,
        Some(v) => v
            .as_u64()
            .filter(|v| *v > 0)
            .context("\"version\" must be a positive integer")?,
    };
    Ok(Document {
        path,
        data,
        create_time: time("create_time")?,
        update_time: time("update_time")?,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let now = Timestamp::from_micros(7).unwrap();
        let doc = from_line(
            r#"{"path":"a/b","data":{"n":1,"t":{"$timestamp":"2026-01-01T00:00:00Z"}},"version":9}"#,
            now,
        )
        .unwrap();
        assert_eq!((doc.version, doc.create_time), (9, now));
        let again = from_line(&to_line(&doc).to_string(), Timestamp::now()).unwrap();
        assert_eq!(again, doc);
    }

    #[test]
    fn bad_lines_say_why() {
        let now = Timestamp::now();
        for (line, why) in [
            ("{", "not valid JSON"),
            ("[]", "JSON object"),
            (r#"{"data":{}}"#, "\"path\""),
            (r#"{"path":"a","data":{}}"#, "names a collection"),
            (r#"{"path":"a/b"}"#, "\"data\""),
            (r#"{"path":"a/b","data":{},"extra":1}"#, "unknown key"),
            (r#"{"path":"a/b","data":{},"version":0}"#, "positive"),
            (r#"{"path":"a/b","data":{},"create_time":5}"#, "RFC 3339"),
        ] {
            let err = format!("{:#}", from_line(line, now).unwrap_err());
            assert!(err.contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn version_2_lines_round_trip_and_bad_ones_say_why() {
        let now = Timestamp::now();
        let record = Record {
            namespace: "users".into(),
            key: "alice".into(),
            value: r#"{"claims":{"a":1}}"#.into(),
        };
        let end = End {
            documents: 3,
            records: 1,
            key_ring: true,
        };
        for (line, entry) in [
            (record_line(&record), Entry::Record(record.clone())),
            (
                key_ring_line("{\"keys\":[]}\n"),
                Entry::KeyRing("{\"keys\":[]}\n".into()),
            ),
            (end_line(&end), Entry::End(end)),
        ] {
            assert_eq!(parse_entry(&line.to_string(), now).unwrap(), entry);
        }
        let header = header_line("data in x", now).to_string();
        assert_eq!(parse_header(&header).unwrap(), Some(VERSION));
        assert_eq!(parse_header(r#"{"path":"a/b","data":{}}"#).unwrap(), None);
        let newer = parse_header(r#"{"claimdb_backup":3}"#).unwrap_err();
        assert!(newer.to_string().contains("newer claimdb"), "{newer}");
        for (line, why) in [
            (r#"{"namespace":"users","key":""}"#, "1 to 1024"),
            (r#"{"namespace":"users","key":"a"}"#, "\"value\""),
            (
                r#"{"namespace":"u","key":"a","value":"v","x":1}"#,
                "unknown key",
            ),
            (r#"{"key_ring":5}"#, "must be a string"),
            (r#"{"end":{"documents":1,"records":0}}"#, "key_ring"),
            (r#"{"what":1}"#, "not a document, record"),
        ] {
            let err = format!("{:#}", parse_entry(line, now).unwrap_err());
            assert!(err.contains(why), "{line}: {err}");
        }
    }
}
