//! `GET /`: the live page, plain HTML and a little JavaScript, no build step.
//!
//! It lists the services and their methods (`services`), calls a method from a form (REST)
//! and shows the result, and follows a domain's events (SSE). Its URLs are relative, so it
//! works wherever the router is mounted (end the mount path with `/`). For scripts and tests:
//! `?call=DOMAIN/TYPE/ID/METHOD&args={...}` fills the form and submits it once the services
//! are loaded; `?events=DOMAIN&topic=order.*` follows events at once (and
//! `&events_max=N` stops after N of them); `#token=TOKEN` gives
//! the bearer token.

use axum::http::header;
use axum::response::IntoResponse;

/// The page.
const PAGE: &str = include_str!("page.html");

pub(crate) async fn handle() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
}
