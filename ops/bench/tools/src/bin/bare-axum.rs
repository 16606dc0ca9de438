//! The session-check yardstick: an axum server answering
//! `GET /v1/auth/session` with the exact bytes identity answered, with no
//! logging, no state and no work. `bare-axum ADDR BODY_FILE`.

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().expect("usage: bare-axum ADDR BODY_FILE");
    let body: &'static [u8] = std::fs::read(args.next().expect("BODY_FILE"))
        .expect("read BODY_FILE")
        .leak();
    let app = Router::new().route(
        "/v1/auth/session",
        get(move || async move { ([(CONTENT_TYPE, "application/json")], body) }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
