//! Property tests of the parsers of untrusted request headers: the client IP
//! from `X-Forwarded-For` (S8), the session cookie and the bearer header (S5).
//! No header panics, and the stated invariants hold for any input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use axum::http::{HeaderMap, HeaderValue, header};
use proptest::prelude::*;

use crate::config::{SameSite, TrustedProxy};
use crate::cookie;
use crate::extract::bearer_token;
use crate::meta::client_ip;
use crate::state::Web;

/// 256 cases per property; `PROPTEST_CASES` sets another number for a deeper
/// run by hand.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok());
    ProptestConfig::with_cases(cases.unwrap_or(256))
}

const TRUSTED: [&str; 3] = ["10.0.0.0/8", "192.0.2.0/24", "2001:db8:1::/48"];

fn trusted() -> Vec<TrustedProxy> {
    TRUSTED
        .iter()
        .map(|t| TrustedProxy::parse(t).unwrap())
        .collect()
}

fn is_trusted(ip: IpAddr) -> bool {
    trusted().iter().any(|t| t.contains(ip))
}

/// Addresses inside the trusted networks (IPv4, IPv4-mapped IPv6, IPv6).
fn trusted_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 3]>().prop_map(|[a, b, c]| IpAddr::V4(Ipv4Addr::new(10, a, b, c))),
        any::<u8>().prop_map(|d| IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))),
        any::<[u8; 3]>()
            .prop_map(|[a, b, c]| { IpAddr::V6(Ipv4Addr::new(10, a, b, c).to_ipv6_mapped()) }),
        any::<[u16; 5]>().prop_map(|[a, b, c, d, e]| {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, a, b, c, d, e))
        }),
    ]
}

/// Addresses outside them.
fn untrusted_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 4]>().prop_map(|b| IpAddr::V6(Ipv4Addr::from(b).to_ipv6_mapped())),
        any::<[u16; 8]>().prop_map(|s| IpAddr::V6(Ipv6Addr::from(s))),
    ]
    .prop_filter("not a trusted proxy", |ip| !is_trusted(*ip))
}

/// An address as a proxy writes it: plain, with a port, in brackets, padded.
fn written(ip: IpAddr) -> impl Strategy<Value = String> {
    let forms = match ip {
        IpAddr::V4(_) => vec![format!("{ip}"), format!("{ip}:4711"), format!(" {ip} ")],
        IpAddr::V6(_) => vec![
            format!("{ip}"),
            format!("[{ip}]"),
            format!("[{ip}]:443"),
            format!("  {ip}"),
        ],
    };
    prop::sample::select(forms)
}

/// An entry that is not an address (ends the walk).
fn junk() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("unknown".to_owned()),
        Just("1.2.3.4.5".to_owned()),
        Just("[2001:db8::1".to_owned()),
        Just("198.51.100.7:".to_owned()),
        Just("_hidden".to_owned()),
        "[ -+\\--~]{1,12}".prop_filter("not an address", |s| {
            s.trim().parse::<IpAddr>().is_err()
                && s.trim().parse::<std::net::SocketAddr>().is_err()
                && !s.trim().starts_with('[')
        }),
    ]
}

fn any_entry() -> impl Strategy<Value = String> {
    prop_oneof![
        trusted_ip().prop_flat_map(written),
        untrusted_ip().prop_flat_map(written),
        junk(),
    ]
}

/// Header lines as a client and its proxies could send them.
fn lines(entries: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop::collection::vec(entries, 1..4), 0..4)
        .prop_map(|ls| ls.into_iter().map(|l| l.join(",")).collect())
}

fn headers(lines: &[String]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in lines {
        headers.append("x-forwarded-for", HeaderValue::from_str(line).unwrap());
    }
    headers
}

proptest! {
    #![proptest_config(config())]

    /// S8: any headers from any peer give an answer, which is the peer (as
    /// IPv4 when it is IPv4-mapped) or one of the entries, and only a trusted
    /// peer's headers are read at all.
    #[test]
    fn s8_client_ip_is_the_peer_or_an_entry(
        peer in prop_oneof![trusted_ip(), untrusted_ip()],
        lines in lines(any_entry()),
        raw in prop::option::of(prop::collection::vec(any::<u8>(), 0..24)),
    ) {
        let mut headers = headers(&lines);
        // Bytes that are not text (obs-text) in a line of their own.
        if let Some(raw) = raw
            && let Ok(v) = HeaderValue::from_bytes(&raw)
        {
            headers.append("x-forwarded-for", v);
        }
        let ip = client_ip(peer, &headers, &trusted());
        prop_assert_eq!(ip, ip.to_canonical());
        if !is_trusted(peer) {
            prop_assert_eq!(ip, peer.to_canonical());
        }
        let entries: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|l| l.split(','))
            .filter_map(|e| {
                let e = e.trim();
                e.parse::<IpAddr>()
                    .or_else(|_| e.parse::<std::net::SocketAddr>().map(|s| s.ip()))
                    .or_else(|_| e.trim_matches(['[', ']']).parse::<IpAddr>())
                    .ok()
            })
            .map(|ip| ip.to_canonical())
            .collect();
        prop_assert!(ip == peer.to_canonical() || entries.contains(&ip));
    }

    /// S8: whatever the client writes left of an address that is not a trusted
    /// proxy, or left of an entry that is not an address, never changes the
    /// answer: the first untrusted address from the right, else the last
    /// trusted hop's view.
    #[test]
    fn s8_the_client_cannot_choose_what_is_left_of_the_stop(
        peer in trusted_ip(),
        client in lines(any_entry()),
        stop in prop_oneof![untrusted_ip().prop_map(Some), Just(None)],
        stop_text in junk(),
        hops in prop::collection::vec(trusted_ip(), 0..4),
        hop_texts in prop::collection::vec(any::<prop::sample::Index>(), 4),
    ) {
        let stop_entry = stop.map_or(stop_text, |ip| ip.to_string());
        let mut right = vec![stop_entry];
        for (hop, i) in hops.iter().zip(&hop_texts) {
            let forms = [hop.to_string(), format!(" {hop} ")];
            right.push(forms[i.index(forms.len())].clone());
        }
        let tail = vec![right.join(",")];
        let expected = stop.map_or_else(
            || hops.first().copied().unwrap_or(peer).to_canonical(),
            |ip| ip.to_canonical(),
        );
        let with_client: Vec<String> = client.into_iter().chain(tail.clone()).collect();
        prop_assert_eq!(client_ip(peer, &headers(&with_client), &trusted()), expected);
        prop_assert_eq!(client_ip(peer, &headers(&tail), &trusted()), expected);
    }

    /// S8: how the entries are split into header lines does not matter, and
    /// when every entry is a trusted proxy the answer is the left-most one.
    #[test]
    fn s8_header_lines_are_one_list(
        peer in trusted_ip(),
        entries in prop::collection::vec(any_entry(), 1..8),
        cuts in prop::collection::vec(any::<bool>(), 8),
        hops in prop::collection::vec(trusted_ip(), 1..5),
    ) {
        let one = headers(&[entries.join(",")]);
        let mut split = vec![String::new()];
        for (i, e) in entries.iter().enumerate() {
            let last = split.len() - 1;
            if i > 0 && cuts[i] {
                split.push(e.clone());
            } else if i > 0 {
                split[last] = format!("{},{e}", split[last]);
            } else {
                split[last] = e.clone();
            }
        }
        prop_assert_eq!(
            client_ip(peer, &one, &trusted()),
            client_ip(peer, &headers(&split), &trusted())
        );
        let all: Vec<String> = hops.iter().map(ToString::to_string).collect();
        prop_assert_eq!(
            client_ip(peer, &headers(&[all.join(", ")]), &trusted()),
            hops[0].to_canonical()
        );
    }

    /// S8: a header line that is not text ends trust right there.
    #[test]
    fn s8_bytes_that_are_not_text_end_the_walk(
        peer in trusted_ip(),
        client in untrusted_ip(),
        bytes in prop::collection::vec(0x80u8..=0xff, 1..8),
    ) {
        let mut headers = headers(&[client.to_string()]);
        headers.append("x-forwarded-for", HeaderValue::from_bytes(&bytes).unwrap());
        prop_assert_eq!(client_ip(peer, &headers, &trusted()), peer.to_canonical());
    }
}

const NAME: &str = "__Host-session";

fn web(cookie_secure: bool) -> Web {
    Web {
        api_prefix: "/auth".to_owned(),
        cookie_name: NAME.to_owned(),
        cookie_secure,
        same_site: SameSite::Lax,
        allowed_origins: Vec::new(),
        trusted_proxies: Vec::new(),
        bearer_tokens: true,
        body_limit: 1024,
        probes_prefix: String::new(),
        script_path: "/auth/assets/auth-pages.js".to_owned(),
        envelope_for_all_routes: false,
        login_page: None,
    }
}

/// Other cookies, some named almost like ours.
fn other_cookie() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        "[A-Za-z0-9_-]{1,12}",
        Just("__host-session".to_owned()),
        Just("__Host-session2".to_owned()),
        Just("x__Host-session".to_owned()),
        Just("__Host-sessio".to_owned()),
    ];
    (name, "[!#-+\\--:<-\\[\\]-~]{0,20}")
}

proptest! {
    #![proptest_config(config())]

    /// S5: any `Cookie` header answers; a value found is the value of a pair
    /// named exactly like the session cookie, and holds no `;`.
    #[test]
    fn s5_cookie_read_never_panics_and_finds_only_its_name(
        lines in prop::collection::vec(prop_oneof![
            "[ -~]{0,60}",
            prop::collection::vec(other_cookie(), 0..4).prop_map(|v| {
                v.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
            }),
        ], 0..3),
    ) {
        let mut headers = HeaderMap::new();
        for line in &lines {
            headers.append(header::COOKIE, HeaderValue::from_str(line).unwrap());
        }
        if let Some(value) = cookie::read(&headers, NAME) {
            prop_assert!(!value.contains(';'));
            let pair = format!("{NAME}={value}");
            prop_assert!(lines.iter().any(|l| l.split(';').any(|p| p.trim() == pair)));
        } else {
            let named = lines.iter().any(|l| {
                l.split(';')
                    .any(|p| p.trim().split_once('=').is_some_and(|(k, _)| k == NAME))
            });
            prop_assert!(!named);
        }
    }

    /// S5: the session cookie we set is read back as its token among any other
    /// cookies, whatever the separators, and the first of two copies wins.
    #[test]
    fn s5_cookie_round_trips_among_others(
        token in "[A-Za-z0-9_-]{43}",
        before in prop::collection::vec(other_cookie(), 0..4),
        after in prop::collection::vec(other_cookie(), 0..4),
        tight in any::<bool>(),
        secure in any::<bool>(),
        max_age in prop::option::of(any::<i64>()),
    ) {
        let set = cookie::set(&web(secure), &token, max_age.map(time::Duration::seconds));
        let set = set.to_str().unwrap();
        let expected = format!("{NAME}={token}; Path=/; HttpOnly; SameSite=Lax");
        prop_assert!(set.starts_with(&expected), "{set}");
        prop_assert_eq!(set.contains("; Secure"), secure);
        if let Some(age) = max_age {
            let expected = format!("; Max-Age={}", age.max(0));
            prop_assert!(set.ends_with(&expected), "{set}");
        }
        // What a browser sends back: our pair among the others.
        let pair = set.split(';').next().unwrap().to_owned();
        let mut pairs: Vec<String> = before.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.push(pair);
        pairs.extend(after.iter().map(|(k, v)| format!("{k}={v}")));
        pairs.push(format!("{NAME}=second-copy"));
        let joined = pairs.join(if tight { ";" } else { "; " });
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&joined).unwrap());
        prop_assert_eq!(cookie::read(&headers, NAME), Some(token));
    }

    /// S5: any `Authorization` header answers; a bearer token found is trimmed
    /// and came after a case-blind `Bearer ` scheme; one we hand out reads back.
    #[test]
    fn s5_bearer_header_never_panics(
        value in prop_oneof![
            "[ -~]{0,60}",
            "(?i:bearer)[ \t]{1,3}[ -~]{0,50}",
        ],
        token in "[A-Za-z0-9_-]{43}",
        scheme in "(?i:bearer)",
    ) {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
        if let Some(t) = bearer_token(&headers) {
            prop_assert_eq!(t, t.trim());
            prop_assert!(value.to_ascii_lowercase().starts_with("bearer "));
        }
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("{scheme} {token}")).unwrap(),
        );
        prop_assert_eq!(bearer_token(&headers), Some(token.as_str()));
    }
}
