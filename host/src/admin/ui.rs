//! The dashboard at `/ui/`: a page, a script and a style sheet, embedded in
//! the binary (no CDN, no build step), that read the admin API with
//! `fetch` like any other client. See `docs/dashboard.md`.
//!
//! Owns which paths are assets and the headers they are served with. Does
//! not own what the page shows: the JSON endpoints do.
//!
//! Access: the assets are the same for everyone and hold no data, so with
//! `--admin-token` they are served without it (the page must load to show
//! its login form); the data the page then fetches needs the token as
//! always. Without a token they get the same loopback and cross-site checks
//! as the API ([`super::auth`]), so there is one rule for the whole listener.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

/// The page's assets by path under `/ui/`: content type and bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "",
        "text/html; charset=utf-8",
        include_bytes!("ui/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("ui/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("ui/app.css"),
    ),
];

/// Everything from the page's own origin and nothing else: no inline
/// script or style (the page has none), no framing (clickjacking of the
/// replay buttons), no form posts elsewhere.
const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

/// Whether `path` is the dashboard's.
pub(super) fn is_ui(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// The asset at `path` (which [`is_ui`]), `/ui` redirected to `/ui/` so
/// the page's relative links resolve.
pub(super) fn serve(path: &str, method: &http::Method) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    if method != http::Method::GET && method != http::Method::HEAD {
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
    } else if path == "/ui" {
        *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
        response
            .headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/ui/"));
    } else {
        let name = path.strip_prefix("/ui/").unwrap_or_default();
        let name = if name == "index.html" { "" } else { name };
        match ASSETS.iter().find(|(asset, _, _)| *asset == name) {
            Some((_, content_type, bytes)) => {
                if method == http::Method::GET {
                    *response.body_mut() = Full::new(Bytes::from_static(bytes));
                }
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            }
            None => {
                *response.status_mut() = StatusCode::NOT_FOUND;
                *response.body_mut() = Full::new(Bytes::from_static(b"no such dashboard file"));
            }
        }
    }
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Served from the binary: a new binary may bring a new page.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_carry_their_type_and_the_security_headers() {
        for (path, kind) in [
            ("/ui/", "text/html"),
            ("/ui/index.html", "text/html"),
            ("/ui/app.js", "text/javascript"),
            ("/ui/app.css", "text/css"),
        ] {
            let response = serve(path, &http::Method::GET);
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let headers = response.headers();
            assert!(
                headers[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with(kind)
            );
            let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(csp.starts_with("default-src 'self'"), "{csp}");
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        }
        assert_eq!(
            serve("/ui/nope.js", &http::Method::GET).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            serve("/ui", &http::Method::GET).status(),
            StatusCode::PERMANENT_REDIRECT
        );
        assert_eq!(
            serve("/ui/", &http::Method::POST).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_loads_nothing_remote() {
        let page = std::str::from_utf8(ASSETS[0].2).unwrap();
        assert!(!page.contains("<script>"), "inline script breaks the CSP");
        assert!(!page.contains("style="), "inline style breaks the CSP");
        for (name, _, bytes) in ASSETS {
            let text = std::str::from_utf8(bytes).unwrap();
            assert!(!text.contains("https://"), "{name} names a remote URL");
            assert!(!text.contains("//cdn"), "{name} names a CDN");
        }
    }
}
