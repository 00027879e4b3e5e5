//! The one place a transaction's URL is built from its request-target and Host
//! header, for every report: the text reports show [`display`], HAR needs the
//! absolute URL of [`absolute`].
//!
//! A request-target comes in four forms (RFC 9112 §3.2), and only the usual one,
//! origin-form (`/path?query`), is relative to the Host header. Gluing every target
//! to the Host gave `example.com:81http://example.com:81/abs` for a proxy request,
//! `example.com:443example.com:443` for CONNECT and `host*` for `OPTIONS *`.

use crate::transaction::Transaction;
use crate::Flag;

/// A request-target, classified by its form (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target<'a> {
    /// No request was captured.
    Missing,
    /// origin-form, `/path?query`: relative to the Host.
    Origin(&'a str),
    /// absolute-form, `http://host/path` (sent to proxies): a URL on its own.
    Absolute(&'a str),
    /// authority-form, `host:port`, of CONNECT: the tunnel's destination.
    Authority(&'a str),
    /// asterisk-form `*` (`OPTIONS *`: the server as a whole), or a target of no
    /// form at all (a malformed request): not a path, so never glued to the Host.
    Other(&'a str),
}

fn target(t: &Transaction) -> Target<'_> {
    let Some(uri) = t.uri.as_deref() else {
        return Target::Missing;
    };
    if uri.starts_with('/') {
        Target::Origin(uri)
    } else if has_scheme(uri) {
        Target::Absolute(uri)
    } else if t.method.as_deref() == Some("CONNECT") {
        Target::Authority(uri)
    } else {
        Target::Other(uri)
    }
}

/// Whether `uri` starts with `scheme://` (RFC 3986 §3.1: a letter, then letters,
/// digits, `+`, `-`, `.`). The `//` is required: `host:port` alone would pass for a
/// scheme, and proxies are always sent URLs with an authority.
fn has_scheme(uri: &str) -> bool {
    let Some((scheme, _)) = uri.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The URL as the table and the summary show it: origin-form targets after the Host
/// header (no scheme: the wire rarely says, and the FLAGS column shows `tls`),
/// absolute-form targets as sent, the CONNECT authority alone, and `OPTIONS *` (or a
/// malformed target) after the Host and a space — `127.0.0.1:8080 *` — since `*` is
/// not a path. `-` when no request was captured. Not escaped: the caller escapes.
pub(super) fn display(t: &Transaction) -> String {
    let host = t.host.as_deref().unwrap_or("");
    match target(t) {
        Target::Missing => "-".to_owned(),
        Target::Origin(path) => format!("{host}{path}"),
        Target::Absolute(url) | Target::Authority(url) => url.to_owned(),
        Target::Other(what) if host.is_empty() => what.to_owned(),
        Target::Other(what) => format!("{host} {what}"),
    }
}

/// The request's absolute URL, for HAR (whose `url` must be one), reconstructed as
/// RFC 9112 §3.3 says: an absolute-form target is the URL; otherwise the scheme is the
/// connection's (`https` for decrypted TLS, else `http`), the authority is the CONNECT
/// target or else the Host header (the server's address when there is none), and the
/// path is the origin-form target, empty for CONNECT and `OPTIONS *`. So CONNECT gives
/// `http://example.com:443` and `OPTIONS *` gives `http://127.0.0.1:8080`: the method
/// tells them apart from a plain request. A malformed target is put after a `/`, which
/// keeps it visible in a URL that still parses.
pub(super) fn absolute(t: &Transaction) -> String {
    let scheme = if t.flags.contains(&Flag::Tls) {
        "https"
    } else {
        "http"
    };
    let host = || t.host.clone().unwrap_or_else(|| super::addr(t.server));
    match target(t) {
        Target::Absolute(url) => url.to_owned(),
        Target::Authority(authority) => format!("{scheme}://{authority}"),
        Target::Origin(path) => format!("{scheme}://{}{path}", host()),
        Target::Other("*") | Target::Missing => format!("{scheme}://{}", host()),
        Target::Other(what) => format!("{scheme}://{}/{what}", host()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample_tx as tx;

    #[test]
    fn origin_form_follows_the_host() {
        let t = tx("GET", Some("web.test"), "/a?b=1");
        assert_eq!(display(&t), "web.test/a?b=1");
        assert_eq!(absolute(&t), "http://web.test/a?b=1");
        let mut tls = t.clone();
        tls.flags.push(Flag::Tls);
        assert_eq!(absolute(&tls), "https://web.test/a?b=1");
    }

    #[test]
    fn origin_form_without_host_uses_the_server_address_in_har_only() {
        let t = tx("GET", None, "/x");
        assert_eq!(display(&t), "/x");
        assert_eq!(absolute(&t), "http://10.0.0.2:8080/x");
    }

    #[test]
    fn absolute_form_is_used_as_sent() {
        let t = tx(
            "GET",
            Some("example.com:81"),
            "http://example.com:81/abs?x=1",
        );
        assert_eq!(display(&t), "http://example.com:81/abs?x=1");
        assert_eq!(absolute(&t), "http://example.com:81/abs?x=1");
        // Any scheme, any case (RFC 3986: schemes are case-insensitive).
        let t = tx("GET", Some("h"), "HTTPS://h/p");
        assert_eq!(display(&t), "HTTPS://h/p");
        assert_eq!(absolute(&t), "HTTPS://h/p");
    }

    #[test]
    fn connect_shows_its_authority() {
        let t = tx("CONNECT", Some("example.com:443"), "example.com:443");
        assert_eq!(display(&t), "example.com:443");
        assert_eq!(absolute(&t), "http://example.com:443");
        // The target, not the Host, names the destination.
        let t = tx("CONNECT", Some("proxy:3128"), "[2001:db8::1]:443");
        assert_eq!(display(&t), "[2001:db8::1]:443");
        assert_eq!(absolute(&t), "http://[2001:db8::1]:443");
    }

    #[test]
    fn options_asterisk_is_the_server_itself() {
        let t = tx("OPTIONS", Some("127.0.0.1:18090"), "*");
        assert_eq!(display(&t), "127.0.0.1:18090 *");
        assert_eq!(absolute(&t), "http://127.0.0.1:18090");
        let t = tx("OPTIONS", None, "*");
        assert_eq!(display(&t), "*");
        assert_eq!(absolute(&t), "http://10.0.0.2:8080");
    }

    #[test]
    fn malformed_targets_are_not_glued_to_the_host() {
        let t = tx("GET", Some("h"), "index.html");
        assert_eq!(display(&t), "h index.html");
        assert_eq!(absolute(&t), "http://h/index.html");
        // `host:port` is not an absolute URL although `host` would pass for a scheme.
        let t = tx("GET", Some("h"), "h:80");
        assert_eq!(display(&t), "h h:80");
    }

    #[test]
    fn no_request_has_no_url() {
        let mut t = tx("GET", None, "/");
        t.method = None;
        t.uri = None;
        assert_eq!(display(&t), "-");
        assert_eq!(absolute(&t), "http://10.0.0.2:8080");
    }
}
