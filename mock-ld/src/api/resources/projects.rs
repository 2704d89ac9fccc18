//! `/projects`: list, create (with the default environments `production` and `test`), get
//! and delete.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::environments;
use crate::api::access::auth::Caller;
use crate::api::json::{check_key, collection, comment_in, parse, query, ListQuery};
use crate::api::records::environment::EnvMeta;
use crate::api::records::project::ProjectData;
use crate::api::records::project::{ProjectMeta, ProjectRep};
use crate::api::write::change::{project_resource, Change, Outcome};
use crate::api::write::registry::ProjectEntry;
use crate::error::AppError;
use crate::model::ClientSideAvailability;
use crate::store::Project;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects", get(list).post(create))
        .route("/projects/{project}", get(read).delete(delete))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectPost {
    key: String,
    name: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    include_in_snippet_by_default: bool,
    #[serde(default)]
    default_client_side_availability: ClientSideAvailability,
    environments: Option<Vec<EnvMeta>>,
}

/// How a project answer carries its environments.
enum Environments {
    Omitted,
    /// `{items, totalCount, _links}`, as GET with `expand=environments` returns them.
    Collection,
    /// A plain array, as the POST answer (ProjectRep) has them.
    Array,
}

fn project_json(data: &ProjectData, environments: Environments) -> Value {
    let meta = &data.meta;
    let envs = || -> Vec<Value> {
        data.environments
            .values()
            .map(|e| environments::env_json(&meta.key, e))
            .collect()
    };
    let environments = match environments {
        Environments::Omitted => None,
        Environments::Array => Some(Value::Array(envs())),
        Environments::Collection => {
            let href = format!("/api/v2/projects/{}/environments", meta.key);
            Some(collection(envs(), &href, &ListQuery::default()))
        }
    };
    serde_json::to_value(ProjectRep::new(meta, environments)).expect("projects serialize")
}

fn shape(page: &ListQuery) -> Environments {
    if page.expands("environments") {
        Environments::Collection
    } else {
        Environments::Omitted
    }
}

async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    page: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let page = query(page)?;
    let items = state
        .api
        .projects()
        .iter()
        .map(|p| project_json(&p.lock(), shape(&page)))
        .collect();
    Ok(Json(collection(items, "/api/v2/projects", &page)))
}

async fn read(
    State(state): State<AppState>,
    _caller: Caller,
    Path(project): Path<String>,
    page: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let page = query(page)?;
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    Ok(Json(project_json(&data, shape(&page))))
}

/// Checks the environments a new project asks for before anything is created.
fn check_environments(environments: &[EnvMeta]) -> Result<(), AppError> {
    for (i, env) in environments.iter().enumerate() {
        check_key("environment", &env.key)?;
        if environments[..i].iter().any(|e| e.key == env.key) {
            return Err(AppError::bad_request(format!(
                "environment key {:?} is given twice",
                env.key
            )));
        }
    }
    Ok(())
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let post: ProjectPost = parse(&body)?;
    check_key("project", &post.key)?;
    let environments = post.environments.unwrap_or_else(|| {
        vec![
            EnvMeta::new("production", "Production"),
            EnvMeta::new("test", "Test"),
        ]
    });
    check_environments(&environments)?;
    let api = &state.api;
    let mut projects = api.projects_mut();
    let change = Change::new(&caller, "createProject", project_resource(&post.key))
        .with_comment(comment_in(&body));
    let answer = change.commit(api, &mut *projects, |projects| {
        let conflict = || {
            AppError::new(
                StatusCode::CONFLICT,
                format!("a project with key {:?} already exists", post.key),
            )
        };
        if projects.contains_key(&post.key) {
            return Err(conflict());
        }
        let mut meta = ProjectMeta::new(&post.key, &post.name);
        meta.tags = post.tags;
        meta.include_in_snippet_by_default = post.include_in_snippet_by_default;
        meta.default_client_side_availability = post.default_client_side_availability;
        let store_project = Project {
            key: post.key.clone(),
            name: post.name.clone(),
            environments: Vec::new(),
        };
        if !api.store().add_project(store_project) {
            return Err(conflict());
        }
        let mut data = ProjectData::new(meta);
        let added = environments
            .into_iter()
            .try_for_each(|env| environments::add(&mut data, api.store(), env).map(drop));
        if let Err(error) = added {
            api.store().remove_project(&post.key);
            return Err(error);
        }
        let answer = project_json(&data, Environments::Array);
        projects.insert(post.key.clone(), Arc::new(ProjectEntry::new(data)));
        Ok(Outcome::created(answer))
    })?;
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<StatusCode, AppError> {
    let api = &state.api;
    let mut projects = api.projects_mut();
    let change = Change::new(&caller, "deleteProject", project_resource(&project));
    change.commit(api, &mut *projects, |projects| {
        let entry = projects
            .remove(&project)
            .ok_or_else(|| AppError::not_found("project", &project))?;
        api.store().remove_project(&project);
        let before = project_json(&entry.lock(), Environments::Array);
        Ok(Outcome::deleted(before))
    })
}
