//! HTML pages (home, login, consent, errors) rendered with minijinja, which HTML-escapes every value
//! in `.html` templates, and served with anti-framing and no-cache headers (MCP security best
//! practices: consent pages MUST NOT be framed, `X-Frame-Options: DENY` / `frame-ancestors 'none'`).
//!
//! Every page names the server (`[ui] title`, else the issuer's host) and may show a logo and an
//! accent colour (`[ui]`, validated in [`crate::config::UiSettings`]). The button text colour is
//! chosen for contrast with the accent (WCAG 2.2 relative luminance, §1.4.3 / §1.4.11). The consent
//! page shows each scope's description (`[[resources]] scope_descriptions`) and marks a client that
//! registered itself (RFC 7591) as unverified: its name was chosen by whoever registered it (MCP
//! security best practices, *Confused Deputy*; RFC 7591 §5). Error pages keep the friendly text and
//! add, under `<details>`, the error code (RFC 6749 §4.1.2.1 names) and the `client_id`.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;

use crate::config::{ScopeDescriptions, Settings, logo_source};
use crate::state::AppState;

/// The compiled templates, the branding every page shows, and the scope descriptions.
pub struct Pages {
    env: Environment<'static>,
    csp: HeaderValue,
    descriptions: ScopeDescriptions,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("macros.html", include_str!("../../templates/macros.html")),
    ("home.html", include_str!("../../templates/home.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("consent.html", include_str!("../../templates/consent.html")),
    ("error.html", include_str!("../../templates/error.html")),
];

/// Content-Security-Policy of every page: no scripts at all, inline styles only, images only from
/// the configured logo's origin, never framed. (No `form-action`: browsers apply it to the redirect
/// that follows a form post, which goes to the client's redirect URI.)
fn csp(img_src: Option<&str>) -> String {
    let img = img_src
        .map(|s| format!("img-src {s}; "))
        .unwrap_or_default();
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; {img}frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The accent when none is configured.
const DEFAULT_ACCENT: &str = "#1f5fbf";
/// Page colours the accent must stand out against (light and dark schemes, see base.html).
const LIGHT_CARD: &str = "#ffffff";
const DARK_CARD: &str = "#1f2226";
const LIGHT_TEXT: &str = "#1d1f23";
const DARK_TEXT: &str = "#e8eaed";

/// What every page shows about the server (the `ui` global of the templates).
#[derive(Debug, Serialize)]
struct Branding {
    /// `[ui] title`, else the issuer's host (and port).
    title: String,
    issuer: String,
    logo_url: Option<String>,
    accent: String,
    /// Black or white, whichever contrasts more with `accent`.
    accent_text: &'static str,
    /// The focus ring on the light and dark card: the accent when it contrasts at least 3:1
    /// (WCAG 2.2 §1.4.11), else the text colour.
    focus_light: String,
    focus_dark: String,
}

/// One requested scope and the words for it.
#[derive(Debug, Clone, Serialize)]
struct ScopeView {
    name: String,
    description: Option<String>,
}

/// The developer details of an error page.
#[derive(Debug, Clone, Copy)]
pub struct ErrorInfo<'a> {
    /// The OAuth error code (`invalid_request`, …).
    pub code: &'a str,
    /// The client the request named, when known (never a secret).
    pub client_id: Option<&'a str>,
}

impl<'a> ErrorInfo<'a> {
    /// The code a page of this status stands for when the handler names none.
    pub fn for_status(status: StatusCode) -> Self {
        let code = match status {
            StatusCode::TOO_MANY_REQUESTS => "slow_down",
            StatusCode::SERVICE_UNAVAILABLE => "temporarily_unavailable",
            StatusCode::FORBIDDEN => "access_denied",
            s if s.is_server_error() => "server_error",
            _ => "invalid_request",
        };
        Self {
            code,
            client_id: None,
        }
    }
}

impl Pages {
    /// Compiles the templates and fixes the branding from validated settings.
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let issuer = settings.issuer_url()?;
        let ui = &settings.ui;
        let title = match ui.title() {
            Some(t) => t.to_string(),
            None => url::Url::parse(&issuer)
                .ok()
                .and_then(|u| {
                    u.host_str().map(|h| match u.port() {
                        Some(p) => format!("{h}:{p}"),
                        None => h.to_string(),
                    })
                })
                .unwrap_or_else(|| issuer.clone()),
        };
        let logo_url = ui.logo_url().map(str::to_string);
        let img_src = match logo_url.as_deref() {
            Some(logo) => Some(
                logo_source(logo).map_err(|why| anyhow::anyhow!("ui.logo_url {logo:?}: {why}"))?,
            ),
            None => None,
        };
        let accent = ui
            .accent_color()
            .map(|c| {
                expand_hex(c)
                    .ok_or_else(|| anyhow::anyhow!("ui.accent_color {c:?} is not a hex colour"))
            })
            .transpose()?
            .unwrap_or_else(|| DEFAULT_ACCENT.to_string());
        let rgb = parse_hex(&accent).unwrap_or([0, 0, 0]);
        let white = contrast(rgb, [255, 255, 255]);
        let black = contrast(rgb, [0, 0, 0]);
        let focus = |card: &str, text: &str| {
            if contrast(rgb, parse_hex(card).unwrap_or([0, 0, 0])) >= 3.0 {
                accent.clone()
            } else {
                text.to_string()
            }
        };
        let branding = Branding {
            title,
            issuer,
            logo_url,
            accent_text: if white >= black { "#ffffff" } else { "#000000" },
            focus_light: focus(LIGHT_CARD, LIGHT_TEXT),
            focus_dark: focus(DARK_CARD, DARK_TEXT),
            accent,
        };
        let mut env = Environment::new();
        // The default auto-escape callback escapes templates whose names end in `.html`; say so
        // explicitly so a future change of name cannot silently turn escaping off.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.add_global(
            "ui",
            minijinja::Value::from(minijinja::value::Serde(&branding)),
        );
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Self {
            env,
            csp: HeaderValue::from_str(&csp(img_src.as_deref()))?,
            descriptions: settings.scope_descriptions()?,
        })
    }

    /// Renders a page. A template failure is a bug; it is logged and answered with a plain page.
    pub fn render(&self, status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(body) => self.html_response(status, body),
            Err(err) => {
                tracing::error!(template = name, error = %err, "page rendering failed");
                self.html_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<!doctype html><title>Error</title><p>Internal error.</p>".into(),
                )
            }
        }
    }

    /// The requested scopes of `resource`, each with its configured description (a template
    /// value: a list of `{name, description}`).
    pub fn describe_scopes(&self, resource: &str, scopes: &[String]) -> minijinja::Value {
        let described = self.descriptions.get(resource);
        let list: Vec<ScopeView> = scopes
            .iter()
            .map(|s| ScopeView {
                name: s.clone(),
                description: described.and_then(|d| d.get(s)).cloned(),
            })
            .collect();
        minijinja::Value::from(minijinja::value::Serde(list))
    }

    /// An error page; the developer details name the code this status stands for.
    pub fn error(&self, status: StatusCode, title: &str, message: &str) -> Response {
        self.error_for(status, title, message, ErrorInfo::for_status(status))
    }

    /// An error page with its developer details.
    pub fn error_for(
        &self,
        status: StatusCode,
        title: &str,
        message: &str,
        info: ErrorInfo<'_>,
    ) -> Response {
        tracing::info!(status = status.as_u16(), title, reason = ?message, code = ?info.code, client_id = ?info.client_id, "error page shown");
        self.render(
            status,
            "error.html",
            minijinja::context! {
                title, message,
                code => info.code, client_id => info.client_id, status => status.as_u16(),
            },
        )
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
        info: ErrorInfo<'_>,
    ) -> Response {
        tracing::info!(status = status.as_u16(), title, reason = ?message, link_host, "error page shown");
        self.render(
            status,
            "error.html",
            minijinja::context! {
                title, message, link, link_host,
                code => info.code, client_id => info.client_id, status => status.as_u16(),
            },
        )
    }

    /// An HTML response with the security headers every page carries.
    pub fn html_response(&self, status: StatusCode, body: String) -> Response {
        let mut resp = (status, Html(body)).into_response();
        secure_page_headers(resp.headers_mut(), self.csp.clone());
        resp
    }
}

/// `GET /`: a small page naming the server and linking to its metadata (instead of a JSON 404).
pub async fn home_get(State(state): State<AppState>) -> Response {
    #[derive(Serialize)]
    struct ResourceView<'a> {
        name: &'a str,
        uri: &'a str,
    }
    let resources: Vec<ResourceView<'_>> = state
        .resources
        .all()
        .iter()
        .map(|r| ResourceView {
            name: &r.name,
            uri: &r.uri,
        })
        .collect();
    state.pages.render(
        StatusCode::OK,
        "home.html",
        minijinja::context! { resources => minijinja::Value::from(minijinja::value::Serde(resources)) },
    )
}

/// Anti-framing, no-cache, no-sniff, no-referrer, and the pages' CSP.
fn secure_page_headers(h: &mut axum::http::HeaderMap, csp: HeaderValue) {
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
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

/// `#rgb` → `#rrggbb`, lower case; `#rrggbb` as is (lower case).
fn expand_hex(c: &str) -> Option<String> {
    let hex = c.strip_prefix('#')?;
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    match hex.len() {
        3 => Some(format!(
            "#{}",
            hex.chars().flat_map(|c| [c, c]).collect::<String>()
        )),
        6 => Some(format!("#{hex}")),
        _ => None,
    }
}

fn parse_hex(c: &str) -> Option<[u8; 3]> {
    let hex = expand_hex(c)?;
    let byte = |i: usize| u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).ok();
    Some([byte(0)?, byte(1)?, byte(2)?])
}

/// WCAG 2.2 relative luminance.
fn luminance(rgb: [u8; 3]) -> f64 {
    let lin = |v: u8| {
        let c = f64::from(v) / 255.0;
        if c <= 0.040_45 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2])
}

/// WCAG 2.2 contrast ratio, 1 to 21.
fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(env: &[(&str, &str)]) -> Settings {
        Settings::load_with_env(
            None,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap()
    }

    /// The page CSS the branding produced (from a rendered page).
    fn style(env: &[(&str, &str)]) -> String {
        let pages = Pages::new(&settings(env)).unwrap();
        let out = pages
            .env
            .get_template("error.html")
            .unwrap()
            .render(minijinja::context! { title => "t", message => "m" })
            .unwrap();
        out.split("</style>").next().unwrap().to_string()
    }

    #[test]
    fn values_are_html_escaped() {
        let pages = Pages::new(&settings(&[])).unwrap();
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

    #[test]
    fn contrast_follows_wcag() {
        assert!((contrast([0, 0, 0], [255, 255, 255]) - 21.0).abs() < 1e-9);
        assert!((contrast([10, 20, 30], [10, 20, 30]) - 1.0).abs() < 1e-9);
        // #767676 on white is the classic 4.54:1.
        let grey = contrast([0x76, 0x76, 0x76], [255, 255, 255]);
        assert!((4.5..4.6).contains(&grey), "{grey}");
        assert_eq!(expand_hex("#1Ae").as_deref(), Some("#11aaee"));
        assert_eq!(expand_hex("#1a2b3c").as_deref(), Some("#1a2b3c"));
        assert_eq!(expand_hex("#12345"), None);
        assert_eq!(parse_hex("#ff8000"), Some([255, 128, 0]));
    }

    #[test]
    fn button_text_and_focus_ring_are_chosen_for_contrast() {
        let dark = style(&[("MCP_OAUTH__UI__ACCENT_COLOR", "#123")]);
        assert!(dark.contains("--accent: #112233;"), "{dark}");
        assert!(dark.contains("--accent-text: #ffffff;"), "{dark}");
        assert!(dark.contains("--focus: #112233;"), "{dark}");
        assert!(
            dark.contains(&format!("--focus: {DARK_TEXT};")),
            "a dark accent is no ring on a dark card: {dark}"
        );
        let light = style(&[("MCP_OAUTH__UI__ACCENT_COLOR", "#FFEB3B")]);
        assert!(light.contains("--accent: #ffeb3b;"), "{light}");
        assert!(light.contains("--accent-text: #000000;"), "{light}");
        assert!(
            light.contains(&format!("--focus: {LIGHT_TEXT};")),
            "a yellow ring on white is not seen: {light}"
        );
        assert!(light.contains("--focus: #ffeb3b;"), "{light}");
        let default = style(&[]);
        assert!(default.contains(&format!("--accent: {DEFAULT_ACCENT};")));
        assert!(default.contains("--accent-text: #ffffff;"));
        assert!(contrast(parse_hex(DEFAULT_ACCENT).unwrap(), [255, 255, 255]) >= 4.5);
    }

    #[test]
    fn the_csp_allows_the_logo_origin_only() {
        let none = Pages::new(&settings(&[])).unwrap();
        assert!(!none.csp.to_str().unwrap().contains("img-src"));
        let remote = Pages::new(&settings(&[(
            "MCP_OAUTH__UI__LOGO_URL",
            "https://cdn.example.com:8443/a/logo.svg?v=1",
        )]))
        .unwrap();
        assert!(
            remote
                .csp
                .to_str()
                .unwrap()
                .contains("img-src https://cdn.example.com:8443; "),
            "{:?}",
            remote.csp
        );
        let local = Pages::new(&settings(&[(
            "MCP_OAUTH__UI__LOGO_URL",
            "/static/logo.svg",
        )]))
        .unwrap();
        assert!(local.csp.to_str().unwrap().contains("img-src 'self'; "));
    }

    #[test]
    fn error_codes_follow_the_status_when_none_is_named() {
        for (status, code) in [
            (StatusCode::TOO_MANY_REQUESTS, "slow_down"),
            (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
            (StatusCode::FORBIDDEN, "access_denied"),
            (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
            (StatusCode::BAD_REQUEST, "invalid_request"),
        ] {
            assert_eq!(ErrorInfo::for_status(status).code, code);
        }
    }
}
