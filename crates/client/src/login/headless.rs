//! Headless login (the original project's automated POST login): fetch the authorization URL,
//! follow redirects by hand (each target checked by the URL policy, so nothing leads to a
//! `file:` or remote plain-http URL), fill in and submit the sign-in form, then approve the
//! consent form, with a cookie jar and whatever hidden fields (CSRF tokens, transaction ids) the
//! pages carry. An authorization server that redirects straight back without any page works too.
//!
//! It works with mcp-oauth servers and with any server whose login form it can read: one form
//! with a password field (the user name goes in the field named `username`, `user`, `login` or
//! `email`, else the first text field), then optionally a form with an approve/allow button.
//! Anything else (JavaScript-only pages, CAPTCHAs, second factors) needs the browser login.

use url::Url;

use super::html::{self, Form};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::urls::{UrlPolicy, redact};

const MAX_STEPS: usize = 12;
const APPROVE_WORDS: &[&str] = &[
    "approve",
    "allow",
    "accept",
    "authorize",
    "authorise",
    "consent",
    "grant",
    "yes",
    "continue",
];
const DENY_WORDS: &[&str] = &["deny", "reject", "cancel", "decline", "no"];

/// A browser-like HTTP client for the login pages: cookies kept, redirects not followed.
pub fn login_http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| Error::Headless(format!("cannot build an HTTP client: {e}")))
}

/// Drives the pages from `authorization_url` until the server redirects to `redirect_uri`, then
/// delivers that redirect to the local callback server.
pub async fn run(
    authorization_url: &Url,
    redirect_uri: &str,
    username: &str,
    password: &Secret,
    policy: UrlPolicy,
) -> Result<()> {
    let http = login_http_client()?;
    let mut url = authorization_url.clone();
    let mut form_body: Option<Vec<(String, String)>> = None;
    let mut sent_password = false;
    for step in 0..MAX_STEPS {
        policy.check_url(&url)?;
        let req = match form_body.take() {
            Some(body) => http.post(url.clone()).form(&body),
            None => http.get(url.clone()),
        };
        let resp = req
            .header("accept", "text/html,application/xhtml+xml")
            .send()
            .await
            .map_err(|e| Error::unreachable(&redact(&url), e))?;
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    Error::Headless(format!("{} redirected without a Location", redact(&url)))
                })?;
            let next = url.join(location).map_err(|e| Error::BadUrl {
                what: "a redirect target",
                url: location.to_string(),
                reason: e.to_string(),
            })?;
            if next.as_str().starts_with(redirect_uri) {
                return deliver(&next).await;
            }
            url = next;
            continue;
        }
        let page = resp.text().await.unwrap_or_default();
        let title = html::title(&page).unwrap_or_default();
        if !status.is_success() && step == 0 {
            return Err(Error::AuthorizationRefused(format!(
                "HTTP {status}{}",
                if title.is_empty() {
                    String::new()
                } else {
                    format!(" ({title})")
                }
            )));
        }
        if !status.is_success() {
            return Err(Error::Headless(format!(
                "{} answered HTTP {status}{}",
                redact(&url),
                if title.is_empty() {
                    String::new()
                } else {
                    format!(" ({title})")
                }
            )));
        }
        let forms = html::forms(&page);
        let (form, body) = if let Some(f) = forms.iter().find(|f| f.has_password()) {
            if sent_password {
                return Err(Error::Headless(format!(
                    "the server showed the sign-in form again ({title}): the user name or \
                     password is wrong, or the account is locked. Check them and try again"
                )));
            }
            sent_password = true;
            (f, fill_login(f, username, password)?)
        } else if let Some((f, body)) = forms.iter().find_map(|f| approve(f).map(|b| (f, b))) {
            (f, body)
        } else {
            return Err(Error::Headless(format!(
                "the page at {} ({title}) has no sign-in or consent form this client can fill in. \
                 Log in with the browser instead (leave out --username)",
                redact(&url)
            )));
        };
        let action = match &form.action {
            Some(a) if !a.is_empty() => url.join(a).map_err(|e| Error::BadUrl {
                what: "a form action",
                url: a.clone(),
                reason: e.to_string(),
            })?,
            _ => url.clone(),
        };
        if form.method == "post" {
            form_body = Some(body);
            url = action;
        } else {
            let mut next = action;
            next.query_pairs_mut().clear().extend_pairs(&body);
            url = next;
        }
    }
    Err(Error::Headless(format!(
        "gave up after {MAX_STEPS} pages and redirects without reaching the callback"
    )))
}

/// The sign-in form's fields: hidden values kept, user name and password filled in.
fn fill_login(form: &Form, username: &str, password: &Secret) -> Result<Vec<(String, String)>> {
    let user_field = form
        .inputs
        .iter()
        .find(|i| {
            matches!(
                i.name.to_ascii_lowercase().as_str(),
                "username" | "user" | "login" | "email" | "user_name"
            )
        })
        .or_else(|| {
            form.inputs
                .iter()
                .find(|i| matches!(i.kind.as_str(), "text" | "email"))
        })
        .map(|i| i.name.clone())
        .ok_or_else(|| {
            Error::Headless("the sign-in form has no user-name field this client recognises".into())
        })?;
    let mut body = Vec::new();
    for i in &form.inputs {
        if i.name == user_field {
            body.push((i.name.clone(), username.to_string()));
        } else if i.kind == "password" {
            body.push((i.name.clone(), password.expose().to_string()));
        } else if keeps(i) {
            body.push((i.name.clone(), i.value.clone().unwrap_or_default()));
        }
    }
    if let Some(b) = form.buttons.first()
        && let Some(name) = &b.name
    {
        body.push((name.clone(), b.value.clone().unwrap_or_default()));
    }
    Ok(body)
}

/// The consent form's fields with its approve button, when it has one.
fn approve(form: &Form) -> Option<Vec<(String, String)>> {
    let is = |b: &super::html::Button, words: &[&str]| {
        let hay =
            format!("{} {}", b.value.as_deref().unwrap_or_default(), b.text).to_ascii_lowercase();
        hay.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| words.contains(&w))
    };
    let button = form
        .buttons
        .iter()
        .find(|b| is(b, APPROVE_WORDS) && !is(b, DENY_WORDS))?;
    let mut body: Vec<(String, String)> = form
        .inputs
        .iter()
        .filter(|i| keeps(i))
        .map(|i| (i.name.clone(), i.value.clone().unwrap_or_default()))
        .collect();
    if let Some(name) = &button.name {
        body.push((name.clone(), button.value.clone().unwrap_or_default()));
    }
    Some(body)
}

/// Fields a browser would submit untouched: hidden and text values, checked boxes.
fn keeps(i: &super::html::Input) -> bool {
    match i.kind.as_str() {
        "checkbox" | "radio" => i.checked,
        "password" | "file" | "image" | "reset" | "button" => false,
        _ => true,
    }
}

/// Hands the final redirect to the local callback server (a loopback GET).
async fn deliver(redirect: &Url) -> Result<()> {
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Headless(format!("cannot build an HTTP client: {e}")))?
        .get(redirect.clone())
        .send()
        .await
        .map_err(|e| Error::unreachable(&redact(redirect), e))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(Error::Headless(format!(
            "the local callback server refused the authorization response (HTTP {}): it does \
             not belong to this login",
            resp.status()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_picks_the_approve_button_and_skips_unchecked_boxes() {
        let f = &html::forms(
            r#"<form method="post"><input type="hidden" name="tx" value="1">
            <input type="checkbox" name="remember" value="yes">
            <button name="decision" value="deny">Deny</button>
            <button name="decision" value="approve">Allow</button></form>"#,
        )[0];
        assert_eq!(
            approve(f).unwrap(),
            vec![
                ("tx".to_string(), "1".to_string()),
                ("decision".to_string(), "approve".to_string())
            ]
        );
        let login = &html::forms(
            r#"<form method="post"><input type="hidden" name="csrf" value="c">
            <input type="email" name="mail"><input type="password" name="pw"></form>"#,
        )[0];
        assert!(approve(login).is_none());
        let body = fill_login(login, "alice", &Secret::new("pw1")).unwrap();
        assert_eq!(
            body,
            vec![
                ("csrf".to_string(), "c".to_string()),
                ("mail".to_string(), "alice".to_string()),
                ("pw".to_string(), "pw1".to_string())
            ]
        );
    }
}
