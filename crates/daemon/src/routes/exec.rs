use std::sync::Arc;

use axum::Router;

use crate::state::Daemon;

pub fn router() -> Router<Arc<Daemon>> {
    Router::new()
}
