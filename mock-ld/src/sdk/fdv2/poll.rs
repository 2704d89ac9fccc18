//! `GET /sdk/poll`: one FDv2 payload as `{"events":[…]}`, with an `ETag` naming the payload
//! version; a matching `If-None-Match` gets 304, which the SDKs take as "no changes".

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::selector::Selector;
use super::{basis, fallback, frames, head_events, Params};
use crate::error::AppError;
use crate::faults::Endpoint;
use crate::sdk::poll::{json_with_etag, not_modified};
use crate::sdk::{admit, authorize};
use crate::store::Fdv2Transfer;
use crate::AppState;

pub async fn poll(
    State(state): State<AppState>,
    params: Result<Query<Params>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if !state.fdv2 {
        // The directive to fall back to FDv1 comes first: a fault is the FDv1 endpoints' to show.
        authorize(&state.store, &headers)?;
        return Ok(fallback());
    }
    let env = admit(&state, &headers, Endpoint::Polling).await?;
    let basis = basis(params)?;
    tracing::debug!(project = %env.project, env = %env.key, ?basis, "FDv2 poll");
    if let Some(unchanged) = not_modified(&headers, &etag(&env.fdv2_selector())) {
        return Ok(unchanged);
    }
    let transfer = env.fdv2_transfer(basis.as_ref());
    let head = frames::json_items(&head_events(&transfer));
    let (selector, body) = match &transfer {
        Fdv2Transfer::Full { snapshot, .. } => (
            &snapshot.selector,
            frames::poll_body(&[&head, &snapshot.objects_json]),
        ),
        Fdv2Transfer::Changes { selector, .. } | Fdv2Transfer::UpToDate(selector) => {
            (selector, frames::poll_body(&[&head]))
        }
    };
    Ok(json_with_etag(&headers, &etag(selector), body))
}

/// Names the payload version the answer brings an SDK to.
fn etag(selector: &Selector) -> String {
    format!(
        "\"mock-ld-fdv2-{}-{}\"",
        selector.payload_id, selector.version
    )
}
