//! Emulator mode's HTTP side (`claimdb emulator`, or `emulator = true`): the projects a
//! Firebase emulator serves and its control endpoints, as `@firebase/rules-unit-testing` and
//! firebase-tools call them.
//!
//! - Each project id gets its own database, made on first use by the [`OpenProject`] function
//!   the binary supplies (its own store and rules), so test files that each use their own
//!   project id never see each other's data. The configured project is the one `/v1/docs`
//!   serves too. At most [`MAX_PROJECTS`] exist at once.
//! - `PUT /emulator/v1/projects/{p}:securityRules` with `{"rules":{"files":[{"content":…}]}}`
//!   (sent as `text/plain`, without credentials) replaces a project's rules;
//!   `DELETE /emulator/v1/projects/{p}/databases/(default)/documents` deletes its documents.
//!
//! These routes exist only in emulator mode; the credentials the emulator accepts (`Bearer
//! owner`, unsigned tokens) are the engine's business (`claimdb_engine::emulator`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, put};
use claimdb_engine::Engine;
use claimdb_firestore::names::Database;
use claimdb_firestore::{Code, Status};
use serde_json::Value as Json;

use crate::AppState;
use crate::firestore::{FsError, project};
use claimdb_firestore::Project;

/// Most projects an emulator holds at once (each has its own store).
pub const MAX_PROJECTS: usize = 256;

/// What makes a new project's engine: its own empty store, the emulator's starting rules.
pub type OpenProject = Box<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<Arc<Engine>, String>> + Send>>
        + Send
        + Sync,
>;

/// The projects of an emulator other than the configured one.
pub struct Emulator {
    open: OpenProject,
    /// Read by every request (a shared lock, never held across an await).
    projects: std::sync::RwLock<HashMap<String, Arc<Project>>>,
    /// Held while a project is made, so two first requests make one.
    making: tokio::sync::Mutex<()>,
}

impl Emulator {
    pub fn new(open: OpenProject) -> Self {
        Emulator {
            open,
            projects: std::sync::RwLock::default(),
            making: tokio::sync::Mutex::default(),
        }
    }

    fn existing(&self, id: &str) -> Option<Arc<Project>> {
        let projects = self
            .projects
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        projects.get(id).cloned()
    }

    /// The project's database (`database` must be `(default)`), made on first use.
    pub(crate) async fn project(&self, id: &str, database: &str) -> Result<Arc<Project>, Status> {
        if let Some(p) = self.existing(id) {
            p.db.check(id, database)?;
            return Ok(p);
        }
        let db = Database::new(id).map_err(Status::invalid)?;
        db.check(id, database)?;
        let _making = self.making.lock().await;
        if let Some(p) = self.existing(id) {
            return Ok(p);
        }
        let count = self
            .projects
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        if count >= MAX_PROJECTS {
            return Err(Status::new(
                Code::ResourceExhausted,
                format!("this emulator already holds {MAX_PROJECTS} projects; restart it"),
            ));
        }
        let engine = (self.open)(id.to_owned()).await.map_err(|e| {
            tracing::error!(project = id, "cannot make the project's database: {e}");
            Status::new(Code::Internal, format!("cannot make project {id:?}: {e}"))
        })?;
        tracing::info!(project = id, "emulator project created");
        let project = Arc::new(Project::new(engine, db));
        self.projects
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_owned(), project.clone());
        Ok(project)
    }

    /// The engines of every project made so far (to close their stores at shutdown).
    pub async fn engines(&self) -> Vec<Arc<Engine>> {
        let _making = self.making.lock().await;
        let projects = self
            .projects
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        projects.values().map(|p| p.engine.clone()).collect()
    }
}

/// The control endpoints.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/emulator/v1/projects/{name}", put(put_rules))
        .route(
            "/emulator/v1/projects/{project}/databases/{database}/documents",
            delete(clear),
        )
}

/// `PUT /emulator/v1/projects/{p}:securityRules`.
async fn put_rules(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, FsError> {
    let Some(id) = name.strip_suffix(":securityRules") else {
        return Err(Status::new(Code::NotFound, format!("no emulator resource {name:?}")).into());
    };
    let source = rules_source(&body)?;
    let project = project(&state, id, claimdb_firestore::names::DATABASE_ID).await?;
    let ruleset = claimdb_engine::compile_rules(&source)?;
    project
        .engine
        .replace_rules(ruleset, format!("emulator rules of project {id}"));
    tracing::info!(project = id, "emulator rules replaced");
    Ok(axum::Json(serde_json::json!({})).into_response())
}

/// The one rules file of a `securityRules` body.
fn rules_source(body: &[u8]) -> Result<String, Status> {
    let json = claimdb_model::json_text::parse_body(body)
        .map_err(|e| Status::invalid(format!("the request body is not valid JSON: {e}")))?;
    let files = json
        .get("rules")
        .and_then(|r| r.get("files"))
        .and_then(Json::as_array)
        .ok_or_else(|| {
            Status::invalid("the body must be {\"rules\":{\"files\":[{\"content\":…}]}}")
        })?;
    match files.as_slice() {
        [file] => file
            .get("content")
            .and_then(Json::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Status::invalid("rules.files[0].content must be a string")),
        _ => Err(Status::invalid(format!(
            "rules.files must hold exactly one file, not {}",
            files.len()
        ))),
    }
}

/// `DELETE /emulator/v1/projects/{p}/databases/(default)/documents`.
async fn clear(
    State(state): State<AppState>,
    Path((id, database)): Path<(String, String)>,
) -> Result<Response, FsError> {
    let project = project(&state, &id, &database).await?;
    let deleted = project.engine.clear_documents().await?;
    tracing::info!(project = id, deleted, "emulator documents cleared");
    Ok(axum::Json(serde_json::json!({})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_file_is_read_from_the_emulators_body() {
        let body = br#"{"rules":{"files":[{"content":"rules_version = '2';","name":"f"}]}}"#;
        assert_eq!(rules_source(body).unwrap(), "rules_version = '2';");
        for bad in [
            &br#"{"rules":{"files":[]}}"#[..],
            br#"{"rules":{"files":[{"content":"a"},{"content":"b"}]}}"#,
            br#"{"rules":{"files":[{"content":1}]}}"#,
            br#"{"rules":{}}"#,
            b"not json",
        ] {
            let e = rules_source(bad).unwrap_err();
            assert_eq!(
                e.code,
                Code::InvalidArgument,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
