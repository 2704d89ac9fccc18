//! `GET /sdk/stream`: the FDv2 stream.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;

use super::{basis, fallback, frames, head_events, Params};
use crate::error::AppError;
use crate::faults::Endpoint;
use crate::sdk::stream::{sse_response, Live, Protocol};
use crate::sdk::{admit, authorize};
use crate::store::Fdv2Transfer;
use crate::AppState;

pub async fn stream(
    State(state): State<AppState>,
    params: Result<Query<Params>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if !state.fdv2 {
        // The directive to fall back to FDv1 comes first: a fault is the FDv1 endpoints' to show.
        authorize(&state.store, &headers)?;
        return Ok(fallback());
    }
    let env = admit(&state, &headers, Endpoint::Stream).await?;
    let basis = basis(params)?;
    tracing::debug!(project = %env.project, env = %env.key, ?basis, "FDv2 stream connected");
    let (transfer, updates) = env.subscribe_fdv2(basis.as_ref());
    let first = first_frames(&transfer);
    Ok(sse_response(
        Live::new(env, first, updates, &FDV2, &state).counted_as_fdv2(),
    ))
}

/// FDv2: `put-object`/`delete-object` plus `payload-transferred` per change, a full
/// transfer to resync, and `goodbye` at shutdown (the SDK reconnects with its basis).
const FDV2: Protocol = Protocol {
    change: |change| change.fdv2.clone(),
    resync: |env| {
        let (mut transfer, updates) = env.subscribe_fdv2(None);
        if let Fdv2Transfer::Full { reason, .. } = &mut transfer {
            *reason = "cant-catchup";
        }
        (first_frames(&transfer), updates)
    },
    farewell: Some(|| frames::sse(&[frames::goodbye("shutdown")])),
    // An object whose data is not JSON: the SDK drops the stream and reconnects.
    malformed: || {
        Bytes::from_static(b"event: put-object\ndata: {\"kind\": \"flag\", \"key\": \n\n")
    },
};

/// What a stream starts with: the per-request events, then a full transfer's shared objects.
fn first_frames(transfer: &Fdv2Transfer) -> Vec<Bytes> {
    let mut first = vec![frames::sse(&head_events(transfer))];
    if let Fdv2Transfer::Full { snapshot, .. } = transfer {
        first.push(snapshot.objects_sse.clone());
    }
    first
}
