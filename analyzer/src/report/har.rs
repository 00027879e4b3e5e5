//! HAR 1.2 output, written entry by entry.

use std::io::{self, Write};

use serde_json::json;

use super::{addr, comm, ms, pid, rfc3339_ns};
use crate::transaction::Transaction;

fn har_headers(h: &[(String, String)]) -> serde_json::Value {
    h.iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect()
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The request's cookies as HAR cookie objects (`{name, value}`), from every
/// `Cookie` header: `name=value` pairs separated by `;`. A pair without `=` is a
/// value with an empty name, as browsers read it (RFC 6265bis §5.6); values are kept
/// as sent (not unquoted or decoded), like the headers beside them.
fn request_cookies(h: &[(String, String)]) -> Vec<serde_json::Value> {
    h.iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = name_value(pair);
            json!({"name": name, "value": value})
        })
        .collect()
}

/// `name=value` split at the first `=` and trimmed; no `=`: an empty name.
fn name_value(pair: &str) -> (&str, &str) {
    match pair.split_once('=') {
        Some((n, v)) => (n.trim(), v.trim()),
        None => ("", pair.trim()),
    }
}

/// The response's cookies as HAR cookie objects, one per `Set-Cookie` header:
/// `name` and `value`, `path`, `domain` and `expires` when the header has them,
/// `httpOnly` and `secure` always (HAR 1.2: "false otherwise"). `expires` is ISO 8601,
/// from `Max-Age` counted from `received_ns` (the response's time) when it has one,
/// as browsers prefer it (RFC 6265 §5.3), else from an `Expires` date §5.1.1 can
/// parse; left out otherwise. Attribute names are matched without regard to case;
/// unknown attributes (SameSite...) stay in the headers.
fn response_cookies(h: &[(String, String)], received_ns: Option<u64>) -> Vec<serde_json::Value> {
    h.iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| {
            let mut parts = v.split(';');
            let (name, value) = name_value(parts.next().unwrap_or(""));
            let mut c = serde_json::Map::new();
            c.insert("name".into(), name.into());
            c.insert("value".into(), value.into());
            let (mut http_only, mut secure) = (false, false);
            let mut max_age = None;
            for attr in parts {
                let (k, v) = match attr.split_once('=') {
                    Some((k, v)) => (k.trim(), v.trim()),
                    None => (attr.trim(), ""),
                };
                if k.eq_ignore_ascii_case("path") {
                    c.insert("path".into(), v.into());
                } else if k.eq_ignore_ascii_case("domain") {
                    c.insert("domain".into(), v.into());
                } else if k.eq_ignore_ascii_case("expires") {
                    if let Some(iso) = cookie_date(v) {
                        c.insert("expires".into(), iso.into());
                    }
                } else if k.eq_ignore_ascii_case("max-age") {
                    max_age = max_age_expiry(v, received_ns).or(max_age);
                } else if k.eq_ignore_ascii_case("httponly") {
                    http_only = true;
                } else if k.eq_ignore_ascii_case("secure") {
                    secure = true;
                }
            }
            if let Some(iso) = max_age {
                c.insert("expires".into(), iso.into());
            }
            c.insert("httpOnly".into(), http_only.into());
            c.insert("secure".into(), secure.into());
            serde_json::Value::Object(c)
        })
        .collect()
}

/// When a cookie with `Max-Age=value` received at `received_ns` expires, as ISO 8601
/// (RFC 6265 §5.2.2: digits with an optional leading `-`, anything else ignored; zero
/// or less is "the earliest representable time", here the Unix epoch).
fn max_age_expiry(value: &str, received_ns: Option<u64>) -> Option<String> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Too many digits for u64 is still a valid, very distant expiry.
    let delta: u64 = digits.parse().unwrap_or(u64::MAX);
    let secs = if value.starts_with('-') || delta == 0 {
        0
    } else {
        (received_ns? / 1_000_000_000).saturating_add(delta)
    };
    // Years past 9999 do not fit the format; browsers cap far expiries too.
    const YEAR_9999_END: u64 = 253_402_300_799;
    Some(iso_seconds(secs.min(YEAR_9999_END)))
}

/// Seconds since the Unix epoch as [`iso_utc`] writes them.
fn iso_seconds(secs: u64) -> String {
    let (y, m, d) = super::civil_from_days((secs / 86_400) as i64);
    iso_utc(y, m, d, secs % 86_400)
}

/// A date and second of the day as HAR writes dates: `YYYY-MM-DDTHH:MM:SS.000Z`.
fn iso_utc(y: i64, m: u32, d: u32, second_of_day: u64) -> String {
    let s = second_of_day;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A cookie `Expires` date parsed as RFC 6265 §5.1.1 says (the lenient algorithm
/// browsers use, which takes IMF-fixdate, RFC 850 and asctime dates alike), as ISO
/// 8601 in UTC (`2027-01-01T00:00:00.000Z`), the format HAR asks for. `None` if it
/// is not a date.
fn cookie_date(s: &str) -> Option<String> {
    /// Leading digits of `tok`, `min..=max` of them, followed by a non-digit or
    /// nothing (the grammar's `*OCTET` tail).
    fn digits(tok: &str, min: usize, max: usize) -> Option<u32> {
        let n = tok.bytes().take_while(u8::is_ascii_digit).count();
        (min..=max).contains(&n).then(|| tok[..n].parse().ok())?
    }
    let is_delimiter = |c: char| matches!(c, '\t' | ' '..='/' | ';'..='@' | '['..='`' | '{'..='~');
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    for tok in s.split(is_delimiter).filter(|t| !t.is_empty()) {
        if time.is_none() {
            let mut hms = tok.splitn(3, ':');
            if let (Some(h), Some(m), Some(s)) = (hms.next(), hms.next(), hms.next()) {
                // Only the hour and minute must be digits alone.
                let exact = |t: &str| digits(t, 1, 2).filter(|_| t.len() <= 2);
                if let (Some(h), Some(m), Some(s)) = (exact(h), exact(m), digits(s, 1, 2)) {
                    time = Some((h, m, s));
                    continue;
                }
            }
        }
        if day.is_none() {
            if let Some(d) = digits(tok, 1, 2) {
                day = Some(d);
                continue;
            }
        }
        if month.is_none() {
            const MONTHS: [&str; 12] = [
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ];
            let m = tok
                .get(..3)
                .and_then(|p| MONTHS.iter().position(|m| p.eq_ignore_ascii_case(m)));
            if let Some(m) = m {
                month = Some(m as u32 + 1);
                continue;
            }
        }
        if year.is_none() {
            if let Some(y) = digits(tok, 2, 4) {
                year = Some(y);
                continue;
            }
        }
    }
    let ((h, mi, sec), d, m, y) = (time?, day?, month?, year?);
    let y = match y {
        70..=99 => y + 1900,
        0..=69 => y + 2000,
        y => y,
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let valid = y >= 1601
        && (1..=month_days[m as usize - 1]).contains(&d)
        && h <= 23
        && mi <= 59
        && sec <= 59;
    valid.then(|| {
        iso_utc(
            i64::from(y),
            m,
            d,
            u64::from(h) * 3600 + u64::from(mi) * 60 + u64::from(sec),
        )
    })
}

/// Starts the HAR document, up to the opening of its entries array.
pub(super) fn begin(out: &mut dyn Write) -> io::Result<()> {
    write!(
        out,
        "{{\"log\":{{\"version\":\"1.2\",\"creator\":{{\"name\":\"l7rec\",\"version\":\"{}\"}},\"pages\":[],\"entries\":[",
        env!("CARGO_PKG_VERSION")
    )
}

/// Writes one entry, preceded by a comma unless it is the first.
pub(super) fn entry(t: &Transaction, comma: bool, out: &mut dyn Write) -> io::Result<()> {
    if comma {
        out.write_all(b",")?;
    }
    out.write_all(b"\n")?;
    serde_json::to_writer(&mut *out, &entry_value(t))?;
    Ok(())
}

/// Closes the entries array and the document.
pub(super) fn end(out: &mut dyn Write) -> io::Result<()> {
    out.write_all(b"\n]}}\n")
}

fn entry_value(t: &Transaction) -> serde_json::Value {
    let url = super::url::absolute(t);
    // A fragment is not part of the query (clients do not send one; a raw request may).
    let query: Vec<serde_json::Value> = url
        .split_once('?')
        .map(|(_, q)| q.split_once('#').map_or(q, |(q, _)| q))
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (n, v) = p.split_once('=').unwrap_or((p, ""));
                    json!({"name": n, "value": v})
                })
                .collect()
        })
        .unwrap_or_default();
    let latency = ms(t.latency_ns()).unwrap_or(0.0);
    let total = ms(t.duration_ns()).unwrap_or(latency);
    // In ns, then to ms: a difference of two ms values carries float noise
    // (0.7345670000000001).
    let receive = t
        .duration_ns()
        .zip(t.latency_ns())
        .map_or(0, |(d, l)| d.saturating_sub(l));
    json!({
        "startedDateTime": t.ts_ns().map(rfc3339_ns),
        "time": total,
        "request": {
            "method": t.method.as_deref().unwrap_or(""),
            "url": url,
            "httpVersion": t.version.as_deref().unwrap_or("HTTP/1.1"),
            "cookies": request_cookies(&t.request_headers),
            "headers": har_headers(&t.request_headers),
            "queryString": query,
            "headersSize": -1,
            "bodySize": t.req_body_bytes.map_or(-1, |v| v as i64),
        },
        "response": {
            "status": t.status.unwrap_or(0),
            "statusText": t.reason.as_deref().unwrap_or(""),
            "httpVersion": t.version.as_deref().unwrap_or("HTTP/1.1"),
            "cookies": response_cookies(&t.response_headers, t.resp_first_ns),
            "headers": har_headers(&t.response_headers),
            "content": {
                "size": t.resp_body_bytes.unwrap_or(0),
                "mimeType": header(&t.response_headers, "content-type").unwrap_or(""),
            },
            "redirectURL": header(&t.response_headers, "location").unwrap_or(""),
            "headersSize": -1,
            "bodySize": t.resp_body_bytes.map_or(-1, |v| v as i64),
        },
        "cache": {},
        "timings": {
            "send": 0,
            "wait": latency,
            "receive": ms(Some(receive)),
        },
        "serverIPAddress": t.server.ip().to_string(),
        "connection": t.flow_id.to_string(),
        "_client": addr(t.client),
        "_clientPid": pid(&t.client_process),
        "_clientComm": comm(&t.client_process),
        "_serverPid": pid(&t.server_process),
        "_serverComm": comm(&t.server_process),
        "_flags": t.flags.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample_tx;

    fn headers(h: &[(&str, &str)]) -> Vec<(String, String)> {
        h.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn request_cookies_are_split_into_pairs() {
        let h = headers(&[
            ("Host", "h"),
            ("Cookie", "a=1; b=x=y;  c= ; ;lone"),
            ("cookie", "d=\"q\""),
        ]);
        assert_eq!(
            serde_json::Value::from(request_cookies(&h)),
            json!([
                {"name": "a", "value": "1"},
                {"name": "b", "value": "x=y"},
                {"name": "c", "value": ""},
                {"name": "", "value": "lone"},
                {"name": "d", "value": "\"q\""},
            ])
        );
        assert!(request_cookies(&headers(&[("Host", "h")])).is_empty());
    }

    #[test]
    fn set_cookie_attributes_become_har_fields() {
        let h = headers(&[
            ("Content-Type", "text/html"),
            (
                "Set-Cookie",
                "sid=abc123; Path=/app; Domain=.example.com; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Secure; HttpOnly; SameSite=Lax",
            ),
            ("set-cookie", "theme=dark; max-age=60"),
            ("Set-Cookie", "x=1; expires=not a date; PATH=/"),
        ]);
        // 2026-10-21T07:27:00.5Z
        let received = Some(1_792_567_620_500_000_000);
        assert_eq!(
            serde_json::Value::from(response_cookies(&h, received)),
            json!([
                {
                    "name": "sid", "value": "abc123", "path": "/app",
                    "domain": ".example.com", "expires": "2026-10-21T07:28:00.000Z",
                    "httpOnly": true, "secure": true,
                },
                {"name": "theme", "value": "dark", "expires": "2026-10-21T07:28:00.000Z",
                 "httpOnly": false, "secure": false},
                {"name": "x", "value": "1", "path": "/", "httpOnly": false, "secure": false},
            ])
        );
    }

    #[test]
    fn max_age_wins_over_expires_and_counts_from_the_response() {
        let received = Some(1_000_000_000_000_000_000); // 2001-09-09T01:46:40Z
        let cookie = |v: &str| {
            let h = headers(&[("Set-Cookie", v)]);
            response_cookies(&h, received)[0]["expires"].clone()
        };
        let at = |iso: &str| serde_json::Value::from(iso);
        assert_eq!(
            cookie("a=1; Max-Age=3600; Expires=Wed, 21 Oct 2026 07:28:00 GMT"),
            at("2001-09-09T02:46:40.000Z")
        );
        assert_eq!(
            cookie("a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT; max-age=0"),
            at("1970-01-01T00:00:00.000Z")
        );
        assert_eq!(cookie("a=1; Max-Age=-5"), at("1970-01-01T00:00:00.000Z"));
        assert_eq!(
            cookie("a=1; Max-Age=99999999999999999999999"),
            at("9999-12-31T23:59:59.000Z")
        );
        // Not a number: ignored, Expires stands.
        assert_eq!(
            cookie("a=1; Max-Age=1h; Expires=Wed, 21 Oct 2026 07:28:00 GMT"),
            at("2026-10-21T07:28:00.000Z")
        );
        assert_eq!(cookie("a=1; Max-Age=+5"), serde_json::Value::Null);
        // Unknown receive time: a relative expiry has nothing to count from.
        let h = headers(&[("Set-Cookie", "a=1; Max-Age=60")]);
        assert_eq!(response_cookies(&h, None)[0].get("expires"), None);
    }

    #[test]
    fn timings_and_query_are_exact() {
        let mut t = sample_tx("GET", Some("h"), "/p?a=1&b=2#frag");
        t.req_first_ns = Some(1_000_000_000);
        t.resp_first_ns = Some(1_000_500_000);
        t.resp_last_ns = Some(1_001_234_567);
        let e = entry_value(&t);
        assert_eq!(e["timings"]["wait"], json!(0.5));
        assert_eq!(e["timings"]["receive"], json!(0.734567));
        assert_eq!(e["time"], json!(1.234567));
        assert_eq!(
            e["request"]["queryString"],
            json!([{"name": "a", "value": "1"}, {"name": "b", "value": "2"}])
        );
    }

    #[test]
    fn cookie_dates_parse_as_browsers_do() {
        for (date, iso) in [
            ("Wed, 21 Oct 2026 07:28:00 GMT", "2026-10-21T07:28:00.000Z"),
            ("Sunday, 06-Nov-94 08:49:37 GMT", "1994-11-06T08:49:37.000Z"),
            ("Sun Nov  6 08:49:37 1994", "1994-11-06T08:49:37.000Z"),
            ("Thu, 01-Jan-1970 00:00:01 GMT", "1970-01-01T00:00:01.000Z"),
            ("29 Feb 2028 23:59:59", "2028-02-29T23:59:59.000Z"),
            ("1 january 30 1:2:3", "2030-01-01T01:02:03.000Z"),
        ] {
            assert_eq!(cookie_date(date).as_deref(), Some(iso), "{date}");
        }
        for bad in [
            "",
            "tomorrow",
            "29 Feb 2027 00:00:00",
            "21 Oct 2026",
            "21 Oct 2026 24:00:00",
            "32 Oct 2026 00:00:00",
            "21 Oct 1600 00:00:00",
            "21 Foo 2026 00:00:00",
        ] {
            assert_eq!(cookie_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn entries_carry_the_cookies() {
        let mut t = sample_tx("GET", Some("h"), "/");
        t.request_headers = headers(&[("Cookie", "a=1")]);
        t.response_headers = headers(&[("Set-Cookie", "b=2; Secure")]);
        let e = entry_value(&t);
        assert_eq!(
            e["request"]["cookies"],
            json!([{"name": "a", "value": "1"}])
        );
        assert_eq!(
            e["response"]["cookies"],
            json!([{"name": "b", "value": "2", "httpOnly": false, "secure": true}])
        );
    }
}
