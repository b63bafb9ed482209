//! Firestore resource names: `projects/{project}/databases/(default)/documents/{path}`. claimdb
//! serves one database, `(default)`, of one configured project; a document's claimdb path is
//! what follows `documents/`.

use claimdb_model::{CollectionPath, DocPath};

use crate::status::{Code, Status};

/// The project id used when none is configured (the `demo-` prefix is Firebase's mark of a
/// project that exists only in emulators).
pub const DEFAULT_PROJECT: &str = "demo-claimdb";

/// The only database id claimdb serves.
pub const DATABASE_ID: &str = "(default)";

/// The database Firestore names refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    project: String,
}

/// What a name under `…/documents` refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `…/documents` itself: the parent of root collections.
    Root,
    Document(DocPath),
    Collection(CollectionPath),
}

impl Database {
    /// A project id is 1 to 100 characters of letters, digits, `-`, `_` and `.` (Firebase's are
    /// narrower; claimdb only needs one that cannot break a name apart).
    pub fn new(project: impl Into<String>) -> Result<Self, String> {
        let project = project.into();
        let ok = !project.is_empty()
            && project.len() <= 100
            && project
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(Database { project })
        } else {
            Err(format!(
                "project id {project:?} must be 1 to 100 letters, digits, '-', '_' or '.'"
            ))
        }
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    /// `projects/{project}/databases/(default)`.
    pub fn name(&self) -> String {
        format!("projects/{}/databases/{DATABASE_ID}", self.project)
    }

    /// `projects/{project}/databases/(default)/documents`.
    pub fn documents(&self) -> String {
        format!("{}/documents", self.name())
    }

    /// The full name of a document.
    pub fn document_name(&self, path: &DocPath) -> String {
        format!("{}/{path}", self.documents())
    }

    /// Checks the project and database of a request's URL or name.
    pub fn check(&self, project: &str, database: &str) -> Result<(), Status> {
        if project != self.project {
            return Err(Status::new(
                Code::NotFound,
                format!(
                    "project {project:?} is not served here; this claimdb serves project {:?}",
                    self.project
                ),
            ));
        }
        if database != DATABASE_ID {
            return Err(Status::new(
                Code::NotFound,
                format!("database {database:?} does not exist; claimdb serves {DATABASE_ID}"),
            ));
        }
        Ok(())
    }

    /// What the part after `documents/` names (`""` is the root).
    pub fn resource(&self, rest: &str) -> Result<Resource, Status> {
        let rest = rest.trim_start_matches('/');
        if rest.is_empty() {
            return Ok(Resource::Root);
        }
        let invalid =
            |e: claimdb_model::ModelError| Status::new(Code::InvalidArgument, e.to_string());
        if rest.split('/').count().is_multiple_of(2) {
            DocPath::parse(rest)
                .map(Resource::Document)
                .map_err(invalid)
        } else {
            CollectionPath::parse(rest)
                .map(Resource::Collection)
                .map_err(invalid)
        }
    }

    /// The document a full name (`projects/…/documents/c/d`) refers to, as a reference value
    /// or a `documents` entry of `batchGet` carries it.
    pub fn parse_document_name(&self, name: &str) -> Result<DocPath, Status> {
        let bad = || {
            Status::new(
                Code::InvalidArgument,
                format!(
                    "{name:?} is not a document name of the form projects/{{project}}/databases/{{database}}/documents/{{path}}"
                ),
            )
        };
        let rest = name.strip_prefix("projects/").ok_or_else(bad)?;
        let (project, rest) = rest.split_once('/').ok_or_else(bad)?;
        let rest = rest.strip_prefix("databases/").ok_or_else(bad)?;
        let (database, rest) = rest.split_once('/').ok_or_else(bad)?;
        let path = rest.strip_prefix("documents/").ok_or_else(bad)?;
        self.check(project, database)?;
        match self.resource(path)? {
            Resource::Document(path) => Ok(path),
            _ => Err(bad()),
        }
    }

    /// What a full name under this database's documents refers to: the root
    /// (`projects/…/documents`), a document or a collection — a request's `parent`.
    pub fn parse_name(&self, name: &str) -> Result<Resource, Status> {
        let bad = || {
            Status::new(
                Code::InvalidArgument,
                format!(
                    "{name:?} is not a name of the form projects/{{project}}/databases/{{database}}/documents[/{{path}}]"
                ),
            )
        };
        let rest = name.strip_prefix("projects/").ok_or_else(bad)?;
        let (project, rest) = rest.split_once('/').ok_or_else(bad)?;
        let rest = rest.strip_prefix("databases/").ok_or_else(bad)?;
        let (database, rest) = rest.split_once('/').ok_or_else(bad)?;
        self.check(project, database)?;
        match rest.strip_prefix("documents") {
            Some("") => Ok(Resource::Root),
            Some(path) if path.starts_with('/') && path.len() > 1 => self.resource(path),
            _ => Err(bad()),
        }
    }
}

impl Default for Database {
    fn default() -> Self {
        Database {
            project: DEFAULT_PROJECT.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_refuse_other_databases() {
        let db = Database::new("my-app").unwrap();
        let path = DocPath::parse("rooms/r1/messages/m1").unwrap();
        let name = db.document_name(&path);
        assert_eq!(
            name,
            "projects/my-app/databases/(default)/documents/rooms/r1/messages/m1"
        );
        assert_eq!(db.parse_document_name(&name).unwrap(), path);
        for other in [
            "projects/other/databases/(default)/documents/rooms/r1",
            "projects/my-app/databases/second/documents/rooms/r1",
        ] {
            assert_eq!(
                db.parse_document_name(other).unwrap_err().code,
                Code::NotFound
            );
        }
        for bad in [
            "rooms/r1",
            "projects/my-app/databases/(default)/documents/rooms",
            "projects/my-app/databases/(default)/documents",
            "projects/my-app/databases/(default)/rooms/r1",
        ] {
            assert_eq!(
                db.parse_document_name(bad).unwrap_err().code,
                Code::InvalidArgument,
                "{bad}"
            );
        }
        assert!(matches!(
            db.resource("rooms").unwrap(),
            Resource::Collection(_)
        ));
        assert!(matches!(db.resource("").unwrap(), Resource::Root));
        assert_eq!(
            db.parse_name("projects/my-app/databases/(default)/documents")
                .unwrap(),
            Resource::Root
        );
        assert_eq!(
            db.parse_name(&name).unwrap(),
            Resource::Document(path.clone())
        );
        for bad in [
            "projects/my-app/databases/(default)/documentsx",
            "projects/my-app/databases/(default)/documents/",
            "projects/my-app/databases/(default)",
        ] {
            assert_eq!(
                db.parse_name(bad).unwrap_err().code,
                Code::InvalidArgument,
                "{bad}"
            );
        }
        assert!(Database::new("a/b").is_err());
        assert!(Database::new("").is_err());
    }
}
