//! Reading small XML request bodies (S3's `CreateBucketConfiguration`, `Delete`,
//! `CompleteMultipartUpload`, `Tagging`...) into a tree of elements.
//!
//! Hostile input is refused, never expanded: a document type declaration (and with it every
//! custom entity) is an error, only XML's five predefined entities and character references
//! are decoded, and the depth and number of elements are capped. Namespaces are dropped: an
//! element is known by its local name, as AWS's parsers do.

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::error::ProtocolError;

/// Caps on a document's shape.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Deepest nesting of elements.
    pub max_depth: usize,
    /// Elements in the whole document.
    pub max_elements: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_depth: 16,
            max_elements: 10_000,
        }
    }
}

/// One element: its local name, its text (the concatenation of its own text and CDATA, not
/// its children's) and its child elements in document order. Attributes are not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }
}

fn malformed(detail: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::Malformed(format!("The XML is not well-formed: {detail}"))
}

/// Local name of a possibly prefixed name (`s3:Key` → `Key`).
fn local(name: &[u8]) -> Result<String, ProtocolError> {
    let name = match name.iter().rposition(|&b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    };
    std::str::from_utf8(name)
        .map(str::to_string)
        .map_err(|_| malformed("an element name is not UTF-8"))
}

/// Parses `xml` into its root element.
pub fn parse(xml: &[u8], limits: ReadLimits) -> Result<Element, ProtocolError> {
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    let mut open = |stack: &mut Vec<Element>, name: &[u8]| -> Result<(), ProtocolError> {
        count += 1;
        if count > limits.max_elements {
            return Err(ProtocolError::Malformed(format!(
                "The XML document has more than {} elements.",
                limits.max_elements
            )));
        }
        if stack.len() >= limits.max_depth {
            return Err(ProtocolError::Malformed(format!(
                "The XML document is nested deeper than {} elements.",
                limits.max_depth
            )));
        }
        stack.push(Element {
            name: local(name)?,
            ..Element::default()
        });
        Ok(())
    };
    let close = |stack: &mut Vec<Element>, root: &mut Option<Element>| {
        if let Some(done) = stack.pop() {
            match stack.last_mut() {
                Some(parent) => parent.children.push(done),
                None => *root = Some(done),
            }
        }
    };
    loop {
        let event = reader.read_event().map_err(malformed)?;
        match event {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(malformed("content after the root element"));
                }
                open(&mut stack, e.name().as_ref())?;
            }
            Event::Empty(e) => {
                if root.is_some() {
                    return Err(malformed("content after the root element"));
                }
                open(&mut stack, e.name().as_ref())?;
                close(&mut stack, &mut root);
            }
            Event::End(_) => close(&mut stack, &mut root),
            Event::Text(t) => {
                let text = t.decode().map_err(malformed)?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(malformed("text outside the root element")),
                }
            }
            Event::CData(t) => {
                let text = std::str::from_utf8(&t).map_err(malformed)?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(text),
                    None => return Err(malformed("CDATA outside the root element")),
                }
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().map_err(malformed)? {
                    Some(c) => c,
                    None => match r.as_ref() {
                        b"amp" => '&',
                        b"lt" => '<',
                        b"gt" => '>',
                        b"quot" => '"',
                        b"apos" => '\'',
                        other => {
                            return Err(malformed(format!(
                                "unknown entity &{};",
                                String::from_utf8_lossy(other)
                            )));
                        }
                    },
                };
                match stack.last_mut() {
                    Some(el) => el.text.push(c),
                    None => return Err(malformed("a reference outside the root element")),
                }
            }
            Event::DocType(_) => {
                return Err(malformed("document type declarations are not allowed"));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed("the document ends inside an element"));
    }
    root.ok_or_else(|| malformed("the document is empty"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_elements_with_namespaces_entities_and_cdata() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
            <Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Object><Key>a&amp;b &#x263A;&#65;</Key></Object>
              <Object><Key><![CDATA[<raw>]]></Key><VersionId/></Object>
              <Quiet>true</Quiet>
            </Delete>"#;
        let root = parse(doc, ReadLimits::default()).unwrap();
        assert_eq!(root.name, "Delete");
        let keys: Vec<&str> = root
            .children_named("Object")
            .filter_map(|o| o.child_text("Key"))
            .collect();
        assert_eq!(keys, ["a&b ☺A", "<raw>"]);
        assert_eq!(root.child_text("Quiet"), Some("true"));
        assert_eq!(
            root.children_named("Object")
                .nth(1)
                .unwrap()
                .child_text("VersionId"),
            Some("")
        );
    }

    #[test]
    fn refuses_hostile_and_broken_documents() {
        let bomb = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><a>&lol;</a>"#;
        assert!(parse(bomb, ReadLimits::default()).is_err());
        assert!(parse(b"<a>&lol;</a>", ReadLimits::default()).is_err());
        for bad in [
            &b""[..],
            b"<a>",
            b"<a></b>",
            b"<a/><b/>",
            b"text",
            b"<a>\xff</a>",
        ] {
            assert!(
                parse(bad, ReadLimits::default()).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "<a>".repeat(20) + &"</a>".repeat(20);
        assert!(parse(deep.as_bytes(), ReadLimits::default()).is_err());
        let wide = format!("<a>{}</a>", "<b/>".repeat(11));
        let small = ReadLimits {
            max_depth: 4,
            max_elements: 10,
        };
        assert!(parse(wide.as_bytes(), small).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet = b"<>/&;#x!-[]CDAT ab=\"'?\n\xff";
        for _ in 0..5_000 {
            let len = rng.usize(0..64);
            let doc: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.usize(0..alphabet.len())])
                .collect();
            let _ = parse(&doc, ReadLimits::default());
        }
    }
}
