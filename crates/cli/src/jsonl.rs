//! The JSON-lines form of documents used by `export` and `import`: one
//! `{"path","data","create_time","update_time","version"}` object per line, the same shape the
//! HTTP API returns for a document.

use anyhow::{Context, bail};
use claimdb_model::{DocPath, Timestamp, json};
use claimdb_store::Document;
use serde_json::{Value as Json, json};

pub fn to_line(doc: &Document) -> Json {
    json!({
        "path": doc.path.as_str(),
        "data": json::encode_document(&doc.data),
        "create_time": doc.create_time.to_string(),
        "update_time": doc.update_time.to_string(),
        "version": doc.version,
    })
}

/// Parses one line; `now` fills missing times, and a missing version becomes 1.
pub fn from_line(line: &str, now: Timestamp) -> anyhow::Result<Document> {
    let value: Json = serde_json::from_str(line).context("not valid JSON")?;
    let Json::Object(object) = value else {
        bail!("a line must be a JSON object")
    };
    if let Some(unknown) = object
        .keys()
        .find(|k| !["path", "data", "create_time", "update_time", "version"].contains(&k.as_str()))
    {
        bail!("unknown key {unknown:?}");
    }
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
}
