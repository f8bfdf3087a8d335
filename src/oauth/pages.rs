//! HTML pages (login, consent, errors) rendered with minijinja, which HTML-escapes every value in
//! `.html` templates, and served with anti-framing and no-cache headers (MCP security best practices:
//! consent pages MUST NOT be framed, `X-Frame-Options: DENY` / `frame-ancestors 'none'`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;

/// The compiled templates.
pub struct Pages {
    env: Environment<'static>,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("consent.html", include_str!("../../templates/consent.html")),
    ("error.html", include_str!("../../templates/error.html")),
];

/// Content-Security-Policy of every page: no scripts at all, inline styles only, never framed.
/// (No `form-action`: browsers apply it to the redirect that follows a form post, which goes to the
/// client's redirect URI.)
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

impl Pages {
    pub fn new() -> anyhow::Result<Self> {
        let mut env = Environment::new();
        // The default auto-escape callback escapes templates whose names end in `.html`; say so
        // explicitly so a future change of name cannot silently turn escaping off.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Self { env })
    }

    /// Renders a page. A template failure is a bug; it is logged and answered with a plain page.
    pub fn render(&self, status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(body) => html_response(status, body),
            Err(err) => {
                tracing::error!(template = name, error = %err, "page rendering failed");
                html_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<!doctype html><title>Error</title><p>Internal error.</p>".into(),
                )
            }
        }
    }

    /// An error page.
    pub fn error(&self, status: StatusCode, title: &str, message: &str) -> Response {
        tracing::info!(status = status.as_u16(), title, reason = ?message, "error page shown");
        self.render(status, "error.html", minijinja::context! { title, message })
    }

    /// An error page that names `link_host` and offers `link` (an error response held back from a
    /// client no user has approved).
    pub fn error_with_link(
        &self,
        status: StatusCode,
        title: &str,
        message: &str,
        link: &str,
        link_host: &str,
    ) -> Response {
        tracing::info!(status = status.as_u16(), title, reason = ?message, link_host, "error page shown");
        self.render(
            status,
            "error.html",
            minijinja::context! { title, message, link, link_host },
        )
    }
}

/// An HTML response with the security headers every page carries.
pub fn html_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, Html(body)).into_response();
    secure_page_headers(resp.headers_mut());
    resp
}

/// Anti-framing, no-cache, no-sniff, no-referrer.
pub fn secure_page_headers(h: &mut axum::http::HeaderMap) {
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_html_escaped() {
        let pages = Pages::new().unwrap();
        let env = &pages.env;
        let out = env
            .get_template("error.html")
            .unwrap()
            .render(minijinja::context! { title => "<script>t</script>", message => "\"><script>m</script>" })
            .unwrap();
        assert!(!out.contains("<script>"), "{out}");
        assert!(
            out.contains("&lt;script&gt;t&lt;&#x2f;script&gt;")
                || out.contains("&lt;script&gt;t&lt;/script&gt;"),
            "{out}"
        );
    }
}
