//! Just enough HTML reading for headless login: the `<form>`s of a page with their `<input>`s and
//! submit buttons (HTML Living Standard §4.10), attribute values entity-decoded. It reads what a
//! server-rendered login or consent page contains; scripts and styles are skipped.

/// One form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pub action: Option<String>,
    /// Lowercase; `get` when absent.
    pub method: String,
    pub inputs: Vec<Input>,
    pub buttons: Vec<Button>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub name: String,
    /// Lowercase `type`; `text` when absent.
    pub kind: String,
    pub value: Option<String>,
    pub checked: bool,
}

/// A submit control (`<button>` or `<input type=submit>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub name: Option<String>,
    pub value: Option<String>,
    /// Visible text (button content or the input's value), trimmed.
    pub text: String,
}

impl Form {
    pub fn has_password(&self) -> bool {
        self.inputs.iter().any(|i| i.kind == "password")
    }
}

/// Every form in `html`.
pub fn forms(html: &str) -> Vec<Form> {
    let mut out = Vec::new();
    let mut current: Option<Form> = None;
    let mut pos = 0;
    while let Some(rel) = html[pos..].find('<') {
        let start = pos + rel;
        if html[start..].starts_with("<!--") {
            pos = html[start..]
                .find("-->")
                .map(|e| start + e + 3)
                .unwrap_or(html.len());
            continue;
        }
        let Some((tag, attrs, end)) = parse_tag(html, start) else {
            pos = start + 1;
            continue;
        };
        pos = end;
        match tag.as_str() {
            "script" | "style" | "textarea" => {
                let close = format!("</{tag}");
                pos = find_ci(html, pos, &close).unwrap_or(html.len());
            }
            "form" => {
                if let Some(f) = current.take() {
                    out.push(f);
                }
                current = Some(Form {
                    action: attr(&attrs, "action"),
                    method: attr(&attrs, "method")
                        .map(|m| m.to_ascii_lowercase())
                        .unwrap_or_else(|| "get".into()),
                    ..Form::default()
                });
            }
            "/form" => {
                if let Some(f) = current.take() {
                    out.push(f);
                }
            }
            "input" => {
                let Some(form) = current.as_mut() else {
                    continue;
                };
                let kind = attr(&attrs, "type")
                    .map(|t| t.to_ascii_lowercase())
                    .unwrap_or_else(|| "text".into());
                let name = attr(&attrs, "name");
                let value = attr(&attrs, "value");
                if kind == "submit" {
                    form.buttons.push(Button {
                        name,
                        text: value.clone().unwrap_or_default(),
                        value,
                    });
                } else if let Some(name) = name {
                    form.inputs.push(Input {
                        name,
                        kind,
                        value,
                        checked: attrs.iter().any(|(k, _)| k == "checked"),
                    });
                }
            }
            "button" => {
                let text_end = find_ci(html, pos, "</button").unwrap_or(html.len());
                let text = strip_tags(&html[pos..text_end]);
                pos = text_end;
                let kind = attr(&attrs, "type").map(|t| t.to_ascii_lowercase());
                if let Some(form) = current.as_mut()
                    && matches!(kind.as_deref(), None | Some("submit"))
                {
                    form.buttons.push(Button {
                        name: attr(&attrs, "name"),
                        value: attr(&attrs, "value"),
                        text,
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(f) = current.take() {
        out.push(f);
    }
    out
}

/// The `<title>` text, for messages.
pub fn title(html: &str) -> Option<String> {
    let start = find_ci(html, 0, "<title")?;
    let open_end = html[start..].find('>')? + start + 1;
    let end = find_ci(html, open_end, "</title")?;
    Some(decode(html[open_end..end].trim()))
}

fn find_ci(html: &str, from: usize, needle: &str) -> Option<usize> {
    let hay = html.get(from..)?.to_ascii_lowercase();
    hay.find(&needle.to_ascii_lowercase()).map(|i| from + i)
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    decode(
        out.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .as_str(),
    )
}

fn attr(attrs: &[(String, String)], name: &str) -> Option<String> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// A tag's lowercase name, its attributes, and the index after its `>`.
type Tag = (String, Vec<(String, String)>, usize);

/// Parses the tag starting at `start` (`<`): lowercase name (with `/` for end tags), attributes,
/// and the index after `>`.
fn parse_tag(html: &str, start: usize) -> Option<Tag> {
    let bytes = html.as_bytes();
    let mut i = start + 1;
    let name_start = i;
    if i < bytes.len() && bytes[i] == b'/' {
        i += 1;
    }
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'-') {
        i += 1;
    }
    let name = html.get(name_start..i)?.to_ascii_lowercase();
    if name.is_empty() || name == "/" {
        return None;
    }
    let mut attrs = Vec::new();
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return None;
        }
        if bytes[i] == b'>' {
            return Some((name, attrs, i + 1));
        }
        let key_start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
        {
            i += 1;
        }
        let key = html.get(key_start..i)?.to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let q = bytes[i];
                let v_start = i + 1;
                let v_end = html[v_start..].find(q as char)? + v_start;
                value = decode(html.get(v_start..v_end)?);
                i = v_end + 1;
            } else {
                let v_start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                value = decode(html.get(v_start..i)?);
            }
        }
        if key.is_empty() {
            i += 1;
        } else {
            attrs.push((key, value));
        }
    }
}

/// Decodes the character references a template engine writes.
pub fn decode(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse::<u32>().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_login_and_consent_forms() {
        let html = r#"<html><head><title>Sign in &middot; x</title>
        <script>var f = "<form action='/evil'>";</script></head><body>
        <!-- <form action="/commented"> -->
        <form method="POST" action="/login?a=1&amp;b=2">
          <input type="hidden" name="tx" value="t&#x2F;1">
          <input type=hidden name=csrf_token value=abc>
          <input type="text" id="username" name="username" value="" autofocus required>
          <input type="password" name="password" required>
          <button type="submit">Sign in</button>
        </form>
        <form method="post" action="/consent">
          <input type="hidden" name="tx" value="t1">
          <label><input type="checkbox" name="remember" value="yes"> Remember</label>
          <button type="submit" name="decision" value="approve">Allow</button>
          <button type="submit" name="decision" value="deny">Deny</button>
        </form></body></html>"#;
        let f = forms(html);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].action.as_deref(), Some("/login?a=1&b=2"));
        assert_eq!(f[0].method, "post");
        assert!(f[0].has_password());
        assert_eq!(f[0].inputs[0].value.as_deref(), Some("t/1"));
        assert_eq!(f[0].inputs[1].value.as_deref(), Some("abc"));
        assert_eq!(f[0].buttons[0].text, "Sign in");
        assert!(!f[1].has_password());
        assert_eq!(f[1].buttons.len(), 2);
        assert_eq!(f[1].buttons[0].value.as_deref(), Some("approve"));
        assert_eq!(f[1].inputs[1].kind, "checkbox");
        assert!(!f[1].inputs[1].checked);
        assert_eq!(title(html).as_deref(), Some("Sign in &middot; x"));
    }
}
