//! Attacks on the upstream sign-in, each refused with our own page and nothing issued: a tampered,
//! foreign or replayed `state`, an answer at another upstream's callback or naming another issuer
//! (mix-up), an upstream error (never a redirect to the client), ID tokens with the wrong nonce,
//! key, expiry or audience, a user outside the allow-list; and no upstream token or secret ever
//! reaches the MCP client or our log.

use reqwest::StatusCode;
use serde_json::json;

use crate::federated::*;
use crate::support::*;
use crate::upstream_op::{CLIENT_SECRET, FakeOp};

fn replace_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.into()
}

#[tokio::test]
async fn a_tampered_state_is_refused() {
    let op = FakeOp::start().await;
    let s = start_federated(&op).await;
    let client_id = s.register_public().await;
    let at = to_callback(&s, &op, &s.auth_params(&client_id)).await;
    let state = query_param(&at.callback, "state").unwrap();
    let mut other = state.clone();
    other.replace_range(0..1, if state.starts_with('A') { "B" } else { "A" });
    for forged in [other.as_str(), "xyz-state", ""] {
        let url = replace_param(&at.callback, "state", forged);
        let r = at.browser.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(
            refusal_page(r)
                .await
                .contains("Sign-in answer not recognised")
        );
    }
    nothing_issued(&s, &at).await;
    assert_eq!(
        op.authenticated_token_requests(),
        0,
        "the code was never redeemed"
    );
}

#[tokio::test]
async fn a_replayed_or_foreign_answer_is_refused() {
    let op = FakeOp::start().await;
    let s = start_federated(&op).await;
    let client_id = s.register_public().await;
    let at = to_callback(&s, &op, &s.auth_params(&client_id)).await;

    // Another browser (an attacker's, or a leaked URL): no binding, no pending sign-in.
    let r = browser().get(&at.callback).send().await.unwrap();
    assert!(refusal_page(r).await.contains("not recognised"));

    // The right browser signs in once…
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // …and the same answer again is refused (its pending cookie is gone).
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert!(refusal_page(r).await.contains("not recognised"));
    assert_eq!(op.authenticated_token_requests(), 1);
}

#[tokio::test]
async fn a_replay_with_the_cookies_kept_is_refused() {
    let op = FakeOp::start().await;
    let s = start_federated(&op).await;
    let client_id = s.register_public().await;
    // A browser without a jar: the test carries every cookie itself and keeps them.
    let b = http();
    let r = s.authorize(&b, &s.auth_params(&client_id)).await;
    let binding = cookie_pair(&r, "mcp_oauth_browser");
    let page = b
        .get(s.url(&location(&r)))
        .header("cookie", &binding)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (tx, csrf) = (input_value(&page, "tx"), input_value(&page, "csrf_token"));
    let r = b
        .post(s.url("/login/upstream/oidc"))
        .header("cookie", &binding)
        .form(&[("tx", tx.as_str()), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let pending = cookie_pair(&r, "mcp_oauth_upstream_");
    let r = b.get(location(&r)).send().await.unwrap();
    let callback = location(&r);
    let cookies = format!("{binding}; {pending}");
    let r = b
        .get(&callback)
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    // The same answer with the same cookies: the transaction is already signed in.
    let r = b
        .get(&callback)
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    let html = refusal_page(r).await;
    assert!(
        html.contains("not recognised"),
        "the replayed answer was not refused as such"
    );
    // The pending cookie without the binding cookie is not enough either.
    let r = b
        .get(&callback)
        .header("cookie", &pending)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    refusal_page(r).await;
}

/// `name=value` of the first `Set-Cookie` whose name starts with `prefix`.
fn cookie_pair(r: &reqwest::Response, prefix: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(prefix))
        .unwrap_or_else(|| panic!("no cookie {prefix}"))
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn mix_up_answers_are_refused() {
    let op = FakeOp::start().await;
    let s = start_federated(&op).await;
    let client_id = s.register_public().await;

    // The answer arrives at another upstream's callback.
    let at = to_callback(&s, &op, &s.auth_params(&client_id)).await;
    let elsewhere = at
        .callback
        .replace("/login/callback/oidc?", "/login/callback/other?");
    let r = at.browser.get(&elsewhere).send().await.unwrap();
    assert!(refusal_page(r).await.contains("wrong identity provider"));
    nothing_issued(&s, &at).await;

    // The answer names another issuer (RFC 9207).
    op.set(|b| b.response_iss = Some("https://attacker.example".into()));
    let at = to_callback(&s, &op, &s.auth_params(&client_id)).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(refusal_page(r).await.contains("iss, RFC 9207"));
    nothing_issued(&s, &at).await;

    // The upstream advertises `iss` and the answer lacks it.
    op.set(|b| b.response_iss = None);
    let at = to_callback(&s, &op, &s.auth_params(&client_id)).await;
    let url = at.callback.replace(&format!("&iss={}", enc(&op.base)), "");
    assert_ne!(url, at.callback);
    let r = at.browser.get(&url).send().await.unwrap();
    assert!(
        refusal_page(r)
            .await
            .contains("does not name its identity provider")
    );
    assert_eq!(op.authenticated_token_requests(), 0, "no code redeemed");
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn an_upstream_error_shows_our_page_and_never_redirects_to_the_client() {
    let op = FakeOp::start().await;
    let s = start_federated(&op).await;
    // An approved, administrator-made client: even its errors would be redirected by /authorize.
    let client_id = s.register_approved().await;
    op.set(|b| b.error = Some("access_denied".into()));
    let at = to_callback(&s, &op, &s.auth_params(&client_id)).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = refusal_page(r).await;
    assert!(
        html.contains("did not sign you in (access_denied)"),
        "{html}"
    );
    assert!(!html.contains(REDIRECT), "no link to the client either");
    nothing_issued(&s, &at).await;

    // An error that is not a plain code is not echoed.
    op.set(|b| b.error = Some("<script>x</script>".into()));
    let at = to_callback(&s, &op, &s.auth_params(&client_id)).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    let html = refusal_page(r).await;
    assert!(
        html.contains("an unreadable error") && !html.contains("<script>x"),
        "{html}"
    );
}

/// Signs in with the upstream misbehaving as `change` says; returns our page.
async fn refused_with(change: impl FnOnce(&mut crate::upstream_op::Behaviour)) -> String {
    let op = FakeOp::start().await;
    let s = start_federated(&op).await;
    let client_id = s.register_public().await;
    op.set(change);
    let at = to_callback(&s, &op, &s.auth_params(&client_id)).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_ne!(
        r.status(),
        StatusCode::OK,
        "the bad answer signed the user in: our consent page followed"
    );
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = refusal_page(r).await;
    assert!(html.contains("Sign-in refused"), "{html}");
    nothing_issued(&s, &at).await;
    html
}

#[tokio::test]
async fn an_id_token_with_the_wrong_nonce_is_refused() {
    let html = refused_with(|b| b.nonce = Some("not-the-nonce-we-sent".into())).await;
    assert!(html.contains("nonce"), "{html}");
}

#[tokio::test]
async fn an_id_token_signed_by_another_key_is_refused() {
    let html = refused_with(|b| b.rogue_key = true).await;
    assert!(html.contains("signature that does not verify"), "{html}");
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    // Beyond the default clock skew of 60 seconds.
    let html = refused_with(|b| b.exp_in = Some(-120)).await;
    assert!(html.contains("has expired"), "{html}");
}

#[tokio::test]
async fn an_id_token_for_another_audience_is_refused() {
    let html = refused_with(|b| b.aud = Some(json!("some-other-client"))).await;
    assert!(html.contains("another client (aud)"), "{html}");
    // Several audiences with us among them but no `azp` naming us.
    let html = refused_with(|b| b.aud = Some(json!([crate::upstream_op::CLIENT_ID, "x"]))).await;
    assert!(html.contains("another party (azp)"), "{html}");
}

#[tokio::test]
async fn a_user_outside_the_allow_list_is_refused() {
    // Another domain, no allowed group.
    let html = refused_with(|b| {
        b.user = json!({"sub": "u9", "email": "eve@evil.example", "email_verified": true,
                        "groups": ["admins"]});
    })
    .await;
    assert!(html.contains("not allowed to sign in here"), "{html}");
    // The right domain, but unverified.
    let html = refused_with(|b| {
        b.user = json!({"sub": "u9", "email": "eve@example.com", "email_verified": false});
    })
    .await;
    assert!(html.contains("not allowed to sign in here"), "{html}");
}

#[tokio::test]
async fn no_upstream_token_or_secret_reaches_the_client_or_the_log() {
    let op = FakeOp::start().await;
    let s = start_federated(&op).await;
    let client_id = s.register_public().await;
    let at = to_callback(&s, &op, &s.auth_params(&client_id)).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    let consent = r.text().await.unwrap();
    let r = s
        .post_consent(&at.browser, &at.tx, &at.csrf, "approve", false)
        .await;
    let redirect = location(&r);
    let code = query_param(&redirect, "code").unwrap();
    let r = s.exchange(&client_id, &code).await;
    let tokens = r.text().await.unwrap();
    let issued = op.issued();
    assert_eq!(
        issued.len(),
        3,
        "the upstream issued an ID, access and refresh token"
    );
    let seen = [consent.as_str(), redirect.as_str(), tokens.as_str()];
    for t in &issued {
        for text in seen {
            assert!(
                !text.contains(t.as_str()),
                "an upstream token reached the client"
            );
        }
    }
    // Our access token is ours: signed by us, for our resource.
    let v: serde_json::Value = serde_json::from_str(&tokens).unwrap();
    let info = s.introspect(v["access_token"].as_str().unwrap()).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["iss"], s.base);
    assert_eq!(info["sub"], "oidc:upstream-user-1");
    // Nothing upstream-secret in our log: tokens, the upstream's code, our client secret.
    let log = captured_log();
    assert!(
        log.contains("OpenID Connect upstream configured")
            && log.contains("signed in through an upstream"),
        "the upstream's and the core's logs are captured"
    );
    let upstream_code = query_param(&at.callback, "code").unwrap();
    for secret in issued
        .iter()
        .map(String::as_str)
        .chain([CLIENT_SECRET, upstream_code.as_str()])
    {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}
