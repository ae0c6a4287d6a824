//! A small XML writer for responses (query protocol, S3). Writing only: element names are the
//! caller's constants, text is escaped, and characters XML 1.0 cannot carry are replaced.

use std::fmt::Write;

/// An XML document under construction.
#[derive(Debug, Default)]
pub struct Xml {
    buf: String,
}

impl Xml {
    /// A document starting with the XML declaration.
    pub fn document() -> Self {
        Self {
            buf: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        }
    }

    /// A fragment without declaration.
    pub fn fragment() -> Self {
        Self::default()
    }

    pub fn open(&mut self, tag: &str) -> &mut Self {
        let _ = write!(self.buf, "<{tag}>");
        self
    }

    /// Opens the root element with its namespace.
    pub fn open_ns(&mut self, tag: &str, namespace: &str) -> &mut Self {
        let _ = write!(self.buf, "<{tag} xmlns=\"{}\">", escape(namespace));
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Self {
        let _ = write!(self.buf, "</{tag}>");
        self
    }

    /// `<tag>text</tag>`, or `<tag/>` for empty text.
    pub fn leaf(&mut self, tag: &str, text: impl std::fmt::Display) -> &mut Self {
        let text = text.to_string();
        if text.is_empty() {
            let _ = write!(self.buf, "<{tag}/>");
        } else {
            let _ = write!(self.buf, "<{tag}>{}</{tag}>", escape(&text));
        }
        self
    }

    /// Escaped text inside the element opened last (`<LocationConstraint>eu-west-1</…>`).
    pub fn text(&mut self, text: &str) -> &mut Self {
        self.buf.push_str(&escape(text));
        self
    }

    /// A leaf only when there is a value.
    pub fn opt_leaf<T: std::fmt::Display>(&mut self, tag: &str, value: Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.leaf(tag, v);
        }
        self
    }

    /// `<tag>…</tag>` around what `inner` writes.
    pub fn elem(&mut self, tag: &str, inner: impl FnOnce(&mut Xml)) -> &mut Self {
        self.open(tag);
        inner(self);
        self.close(tag)
    }

    pub fn finish(self) -> String {
        self.buf
    }
}

/// Escapes text for element content and attribute values. Carriage returns are written as
/// `&#xD;` (a parser would otherwise fold `\r\n` into `\n`, changing message bodies), and the
/// characters XML 1.0 forbids are replaced by U+FFFD.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    let needs = text
        .chars()
        .any(|c| matches!(c, '&' | '<' | '>' | '"' | '\'' | '\r') || !allowed(c));
    if !needs {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c if !allowed(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// XML 1.0's `Char` production.
fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_nested_elements_with_escaped_text() {
        let mut x = Xml::fragment();
        x.elem("Attributes", |x| {
            x.open("entry")
                .leaf("key", "Policy")
                .leaf("value", "{\"a\":\"<b>\"}")
                .close("entry");
        })
        .leaf("Empty", "")
        .opt_leaf("Absent", None::<&str>)
        .opt_leaf("Count", Some(3));
        assert_eq!(
            x.finish(),
            "<Attributes><entry><key>Policy</key>\
             <value>{&quot;a&quot;:&quot;&lt;b&gt;&quot;}</value></entry></Attributes>\
             <Empty/><Count>3</Count>"
        );
    }

    #[test]
    fn keeps_carriage_returns_and_replaces_forbidden_characters() {
        assert_eq!(escape("a\r\nb"), "a&#xD;\nb");
        assert_eq!(escape("x\u{1}y\u{FFFE}"), "x\u{FFFD}y\u{FFFD}");
        assert_eq!(escape("plain text ✓"), "plain text ✓");
    }
}
