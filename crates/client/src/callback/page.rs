//! The pages the callback server answers with. Everything the authorization server or a stray
//! request put in the URL is HTML-escaped before it reaches the page.

/// Escapes `& < > " '` (enough for element content and quoted attributes).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// A small complete page; `message` is escaped here.
pub fn render(title: &str, message: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{t}</title></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto\">\
         <h1>{t}</h1><p>{m}</p></body></html>",
        t = escape(title),
        m = escape(message)
    )
}

pub fn success() -> String {
    render(
        "Login complete",
        "You are logged in. You can close this window and return to the application.",
    )
}

pub fn failure(error: &str, description: Option<&str>) -> String {
    let detail = match description {
        Some(d) => format!("The authorization server answered {error}: {d}."),
        None => format!("The authorization server answered {error}."),
    };
    render(
        "Login failed",
        &format!("{detail} Close this window and start the login again from the application."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show() {
        let p = failure("access_denied", Some("<script>alert('x')</script> & \"q\""));
        assert!(!p.contains("<script>"), "{p}");
        assert!(
            p.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;q&quot;")
        );
    }
}
