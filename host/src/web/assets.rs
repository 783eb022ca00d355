//! The web app's own CSS, ES modules and icon, embedded in the binary and
//! served at URLs that carry a hash of their content
//! (`/assets/app.3f9c2a1b7d.css`), so a browser may keep each one forever
//! (`Cache-Control: immutable`) and an upgraded server's files are new URLs.
//! Text files are also kept gzip-compressed for clients that accept it.

use std::collections::HashMap;
use std::io::Write;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
struct Asset {
    content_type: &'static str,
    bytes: &'static [u8],
    gzip: Option<Vec<u8>>,
    /// The hashed file name it is served under.
    served_as: String,
}

/// The files, by logical name (`app.css`).
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app.js"),
    ),
    (
        "audit.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/audit.js"),
    ),
    (
        "plugins.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/plugins.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../assets/icon.svg"),
    ),
];

struct Catalogue {
    by_name: HashMap<&'static str, Asset>,
    by_served: HashMap<String, &'static str>,
}

fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        let mut by_name = HashMap::new();
        let mut by_served = HashMap::new();
        for (name, content_type, bytes) in FILES {
            let hash = hex::encode(Sha256::digest(bytes));
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
            let served_as = format!("{stem}.{}.{ext}", &hash[..12]);
            let gzip = (!content_type.starts_with("image/") || content_type.contains("svg"))
                .then(|| compress(bytes));
            by_served.insert(served_as.clone(), *name);
            by_name.insert(
                *name,
                Asset {
                    content_type,
                    bytes,
                    gzip,
                    served_as,
                },
            );
        }
        Catalogue { by_name, by_served }
    })
}

fn compress(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// The URL of the embedded file `name` (`app.css`), with its hash.
pub fn url(name: &str) -> String {
    match catalogue().by_name.get(name) {
        Some(asset) => format!("/assets/{}", asset.served_as),
        None => format!("/assets/missing-{name}"),
    }
}

/// `GET /assets/{file}`: an embedded file by its hashed name.
pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let catalogue = catalogue();
    let Some(asset) = catalogue
        .by_served
        .get(&file)
        .and_then(|name| catalogue.by_name.get(name))
    else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let gzip_ok = headers
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let cache = [
        (CONTENT_TYPE, asset.content_type),
        (CACHE_CONTROL, "public, max-age=31536000, immutable"),
        (VARY, "Accept-Encoding"),
    ];
    match (&asset.gzip, gzip_ok) {
        (Some(gzip), true) => (cache, [(CONTENT_ENCODING, "gzip")], gzip.clone()).into_response(),
        _ => (cache, asset.bytes).into_response(),
    }
}

/// `GET /favicon.ico`: browsers ask for it whatever the page links.
pub async fn favicon() -> Response {
    let asset = &catalogue().by_name["icon.svg"];
    (
        [
            (CONTENT_TYPE, asset.content_type),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        asset.bytes,
    )
        .into_response()
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/assets/{file}", get(serve))
        .route("/favicon.ico", get(favicon))
}
