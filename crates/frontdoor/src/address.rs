//! Which function URL a request is for, and the path the function sees.
//!
//! Two forms reach the same URL: the path form `/lambda-url/<url-id>/<path>` on Kindling's own
//! address (works with no DNS), and the host form `<url-id>.lambda-url.<region>.<anything>`
//! (as on AWS; `*.localhost` resolves to the loopback in browsers and curl).

/// A request's function URL and the path the function sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address<'a> {
    pub url_id: &'a str,
    /// The path without the `/lambda-url/<id>` prefix, still percent-encoded; `/` at least.
    pub path: &'a str,
}

/// Longest url-id looked up (AWS's are 32 characters).
const MAX_ID: usize = 64;

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The host without its port.
fn host_name(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The address of a request (`None`: not a function URL this server can name).
pub fn address<'a>(host: Option<&'a str>, path: &'a str) -> Option<Address<'a>> {
    if let Some(host) = host {
        let mut labels = host_name(host).split('.');
        if let (Some(id), Some("lambda-url")) = (labels.next(), labels.next()) {
            let id_lower = id;
            return valid_id(id_lower).then_some(Address {
                url_id: id_lower,
                path: if path.is_empty() { "/" } else { path },
            });
        }
    }
    let rest = path.strip_prefix("/lambda-url/")?;
    let (id, inner) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    valid_id(id).then_some(Address {
        url_id: id,
        path: inner,
    })
}

/// The domain name the event shows for a URL: `<url-id>.lambda-url.<region>.on.aws`, as on
/// AWS (functions that build links from it get AWS's shape).
pub fn domain_name(url_id: &str, region: &str) -> String {
    format!("{url_id}.lambda-url.{region}.on.aws")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a<'a>(url_id: &'a str, path: &'a str) -> Option<Address<'a>> {
        Some(Address { url_id, path })
    }

    #[test]
    fn path_form() {
        assert_eq!(
            address(Some("127.0.0.1:9001"), "/lambda-url/abc123/"),
            a("abc123", "/")
        );
        assert_eq!(address(None, "/lambda-url/abc123"), a("abc123", "/"));
        assert_eq!(
            address(Some("localhost"), "/lambda-url/abc123/items/7%20x"),
            a("abc123", "/items/7%20x")
        );
        assert_eq!(address(None, "/lambda-url//x"), None);
        assert_eq!(address(None, "/lambda-url/ABC/x"), None);
        assert_eq!(address(None, "/lambda-url/a.b/x"), None);
        assert_eq!(address(None, "/other/abc/"), None);
        let long = format!("/lambda-url/{}/", "a".repeat(65));
        assert_eq!(address(None, &long), None);
    }

    #[test]
    fn host_form() {
        assert_eq!(
            address(Some("abc123.lambda-url.us-east-1.localhost:9001"), "/items"),
            a("abc123", "/items")
        );
        // The host form wins: a path that looks like the path form is the function's.
        assert_eq!(
            address(
                Some("abc123.lambda-url.us-east-1.localhost"),
                "/lambda-url/zzz/"
            ),
            a("abc123", "/lambda-url/zzz/")
        );
        assert_eq!(address(Some("Bad!.lambda-url.x"), "/"), None);
    }

    #[test]
    fn domain() {
        assert_eq!(
            domain_name("abc", "eu-west-1"),
            "abc.lambda-url.eu-west-1.on.aws"
        );
    }
}
