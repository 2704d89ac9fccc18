//! FDv2, the data system LaunchDarkly's newer SDKs opt into: `GET /sdk/stream` and
//! `GET /sdk/poll`, each with an optional `?basis=` selector from an earlier payload.
//!
//! Both answer with a `server-intent` (`xfer-full` without a usable basis, `xfer-changes`
//! with one mock-ld can catch up from, `none` when it is current), the objects, and a
//! `payload-transferred` naming the new selector. The stream then sends each change as
//! `put-object` or `delete-object` plus `payload-transferred`, and `goodbye` at shutdown.
//! With `--fdv2 off` both answer 404 with `X-LD-FD-Fallback: true`, which makes an SDK
//! switch to its FDv1 fallback (polling `/sdk/latest-all`) instead of giving up.

pub mod frames;
pub mod poll;
pub mod selector;
pub mod stream;

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use self::frames::{Event, Intent};
use self::selector::Selector;
use crate::error::AppError;
use crate::store::Fdv2Transfer;

/// The FDv1 fallback directive: an SDK that sees it `true` on any FDv2 response stops
/// using FDv2 for good and polls FDv1 (Python `impl/util.py`, js-core `Requestor.ts`).
pub const FALLBACK_HEADER: &str = "x-ld-fd-fallback";

/// The query both endpoints take. `filter` (payload filters) is accepted and ignored, as on
/// `/all`.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    basis: Option<String>,
}

/// The selector a request's `basis` names; `None` when absent or not one mock-ld wrote,
/// either of which gets a full transfer.
pub fn basis(params: Result<Query<Params>, QueryRejection>) -> Result<Option<Selector>, AppError> {
    let Query(params) = params.map_err(|e| AppError::bad_request(e.body_text()))?;
    Ok(params.basis.as_deref().and_then(Selector::parse))
}

/// The answer when FDv2 is switched off: not served here, use FDv1.
pub fn fallback() -> Response {
    let mut response = AppError::new(
        StatusCode::NOT_FOUND,
        "this mock-ld serves FDv1 only (--fdv2 off); use /all or /sdk/latest-all",
    )
    .into_response();
    response
        .headers_mut()
        .insert(FALLBACK_HEADER, HeaderValue::from_static("true"));
    response
}

/// The events of a transfer that are built per request: the `server-intent`, and for
/// changes the changed objects (shared bytes) and `payload-transferred`. A full transfer's
/// objects come ready-made from the environment's snapshot.
fn head_events(transfer: &Fdv2Transfer) -> Vec<Event> {
    match transfer {
        Fdv2Transfer::Full { snapshot, reason } => {
            vec![frames::server_intent(
                &snapshot.selector,
                Intent::Full,
                reason,
            )]
        }
        Fdv2Transfer::Changes { selector, events } => {
            let mut all = Vec::with_capacity(events.len() + 2);
            all.push(frames::server_intent(selector, Intent::Changes, "stale"));
            all.extend(events.iter().cloned());
            all.push(frames::payload_transferred(selector));
            all
        }
        Fdv2Transfer::UpToDate(selector) => {
            vec![frames::server_intent(selector, Intent::None, "up-to-date")]
        }
    }
}
