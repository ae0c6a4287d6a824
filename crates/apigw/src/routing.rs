//! Path templates and how API Gateway picks the one a request path matches.
//!
//! Templates are `/pets`, `/pets/{id}` and greedy `/{proxy+}` (the greedy variable last).
//! Among the templates that match, the most specific wins: one without a greedy variable over
//! one with; then, segment by segment from the left, a literal over a variable over the greedy
//! variable (so a longer literal prefix before a greedy variable wins); then a route for the
//! request's method over `ANY`. Variables capture the URL-decoded segment; the greedy one
//! captures the rest of the path (at least one character).

use percent_encoding::percent_decode_str;

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
}

/// How specific a match is; greater is more specific.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity {
    not_greedy: bool,
    ranks: Vec<u8>,
    method: bool,
}

/// A variable's name and value.
pub type Params = Vec<(String, String)>;

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// A path segment's characters: unreserved, sub-delims, `:`, `@`, and `%`.
fn is_literal(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%".contains(&b))
}

impl PathTemplate {
    /// The template `/`.
    pub fn root() -> Self {
        Self {
            segments: Vec::new(),
        }
    }

    /// Parses `/a/{b}/{c+}`; the error says what is wrong.
    pub fn parse(path: &str) -> Result<Self, String> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(format!("Resource path must start with '/': {path}"));
        };
        if rest.is_empty() {
            return Ok(Self {
                segments: Vec::new(),
            });
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        let mut names = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let seg = Self::segment(part)
                .ok_or_else(|| format!("Invalid path part '{part}' in {path}"))?;
            match &seg {
                Segment::Greedy(_) if i + 1 != parts.len() => {
                    return Err(format!(
                        "A greedy path variable ({part}) must be the last part of the path: {path}"
                    ));
                }
                Segment::Param(n) | Segment::Greedy(n) => {
                    if names.contains(n) {
                        return Err(format!("Duplicate path variable '{n}' in {path}"));
                    }
                    names.push(n.clone());
                }
                Segment::Literal(_) => {}
            }
            segments.push(seg);
        }
        Ok(Self { segments })
    }

    /// One path part: `name`, `{var}` or `{var+}`.
    pub fn segment(part: &str) -> Option<Segment> {
        if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            return match inner.strip_suffix('+') {
                Some(name) if is_name(name) => Some(Segment::Greedy(name.to_string())),
                None if is_name(inner) => Some(Segment::Param(inner.to_string())),
                _ => None,
            };
        }
        is_literal(part)
            .then(|| Segment::Literal(part.to_string()))
            .filter(|_| !part.contains(['{', '}']))
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Matches the request path's segments (still percent-encoded).
    pub fn matches(&self, path: &[&str]) -> Option<(Vec<u8>, bool, Params)> {
        let mut params = Vec::new();
        let mut ranks = Vec::with_capacity(self.segments.len());
        let mut i = 0;
        for seg in &self.segments {
            match seg {
                Segment::Literal(l) => {
                    let got = path.get(i)?;
                    if got != l && decode(got) != *l {
                        return None;
                    }
                    ranks.push(2);
                }
                Segment::Param(n) => {
                    let got = path.get(i)?;
                    if got.is_empty() {
                        return None;
                    }
                    params.push((n.clone(), decode(got)));
                    ranks.push(1);
                }
                Segment::Greedy(n) => {
                    let rest = path.get(i..)?.join("/");
                    if rest.is_empty() {
                        return None;
                    }
                    params.push((n.clone(), decode(&rest)));
                    ranks.push(0);
                    return Some((ranks, false, params));
                }
            }
            i += 1;
        }
        (i == path.len()).then_some((ranks, true, params))
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// A request path's segments: the leading `/` and one trailing `/` dropped (`/` has none).
pub fn split_path(path: &str) -> Vec<&str> {
    let p = path.strip_prefix('/').unwrap_or(path);
    let p = p.strip_suffix('/').unwrap_or(p);
    if p.is_empty() {
        Vec::new()
    } else {
        p.split('/').collect()
    }
}

/// A candidate for matching: a template with the method it answers (`ANY` for all).
pub trait Candidate {
    fn template(&self) -> &PathTemplate;
    fn method(&self) -> &str;
}

/// The most specific candidate for `method` and `path` (see the module docs), with its
/// variables.
pub fn best<'a, C: Candidate>(
    candidates: &'a [C],
    method: &str,
    path: &str,
) -> Option<(&'a C, Params)> {
    let segs = split_path(path);
    let mut found: Option<(Specificity, &C, Params)> = None;
    for c in candidates {
        let m = c.method();
        let exact = m.eq_ignore_ascii_case(method);
        if !exact && m != "ANY" {
            continue;
        }
        let Some((ranks, not_greedy, params)) = c.template().matches(&segs) else {
            continue;
        };
        let spec = Specificity {
            not_greedy,
            ranks,
            method: exact,
        };
        if found.as_ref().is_none_or(|(s, _, _)| spec > *s) {
            found = Some((spec, c, params));
        }
    }
    found.map(|(_, c, p)| (c, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct R(&'static str, &'static str, PathTemplate);

    impl Candidate for R {
        fn template(&self) -> &PathTemplate {
            &self.2
        }
        fn method(&self) -> &str {
            self.0
        }
    }

    fn routes(keys: &[(&'static str, &'static str)]) -> Vec<R> {
        keys.iter()
            .map(|(m, p)| R(m, p, PathTemplate::parse(p).expect(p)))
            .collect()
    }

    fn pick(rs: &[R], method: &str, path: &str) -> Option<(String, Params)> {
        best(rs, method, path).map(|(r, p)| (format!("{} {}", r.0, r.1), p))
    }

    #[test]
    fn most_specific_wins() {
        let rs = routes(&[
            ("ANY", "/{proxy+}"),
            ("GET", "/pets/{id}"),
            ("GET", "/pets/dog"),
            ("ANY", "/pets/{proxy+}"),
            ("ANY", "/pets/{id}"),
            ("GET", "/"),
            ("GET", "/a/{x}/c"),
            ("GET", "/a/b/{y}"),
        ]);
        assert_eq!(pick(&rs, "GET", "/pets/dog").unwrap().0, "GET /pets/dog");
        let (k, p) = pick(&rs, "GET", "/pets/7").unwrap();
        assert_eq!(k, "GET /pets/{id}");
        assert_eq!(p, vec![("id".to_string(), "7".to_string())]);
        // A method without its own route falls to ANY on the same template.
        assert_eq!(pick(&rs, "DELETE", "/pets/7").unwrap().0, "ANY /pets/{id}");
        let (k, p) = pick(&rs, "GET", "/pets/a/b%20c").unwrap();
        assert_eq!(k, "ANY /pets/{proxy+}");
        assert_eq!(p, vec![("proxy".to_string(), "a/b c".to_string())]);
        assert_eq!(pick(&rs, "POST", "/x/y").unwrap().0, "ANY /{proxy+}");
        assert_eq!(pick(&rs, "GET", "/").unwrap().0, "GET /");
        // A greedy variable needs at least one character.
        assert_eq!(pick(&rs, "POST", "/").map(|x| x.0), None);
        // Literal beats variable from the left.
        assert_eq!(pick(&rs, "GET", "/a/b/c").unwrap().0, "GET /a/b/{y}");
        // A trailing slash is the same path.
        assert_eq!(pick(&rs, "GET", "/pets/dog/").unwrap().0, "GET /pets/dog");
        // Encoded literals match their decoded form.
        assert_eq!(pick(&rs, "GET", "/pets/%64og").unwrap().0, "GET /pets/dog");
    }

    #[test]
    fn templates_are_validated() {
        assert!(PathTemplate::parse("/{proxy+}/x").is_err());
        assert!(PathTemplate::parse("pets").is_err());
        assert!(PathTemplate::parse("/a/{id}/{id}").is_err());
        assert!(PathTemplate::parse("/a//b").is_err());
        assert!(PathTemplate::parse("/a/{}").is_err());
        assert!(PathTemplate::parse("/a b").is_err());
        assert!(PathTemplate::parse("/a{b}").is_err());
        assert!(PathTemplate::parse("/").is_ok());
        assert!(PathTemplate::parse("/v1/{proxy+}").is_ok());
    }
}
