//! A lossless short form of user agents, for the session records: the common
//! fragments of browser and client user agents each become one byte.
//!
//! A browser's user agent is 100 to 150 bytes, most of them the same
//! fragments in every one ("Mozilla/5.0 (", "AppleWebKit/537.36 (KHTML, like
//! Gecko)", "Safari/537.36"); as plain text it would be the largest part of a
//! session in Redis. Each fragment of [`FRAGMENTS`] is written as the byte
//! of its position + 1 (1 to 31), bytes that HTTP header values never hold;
//! an agent that holds one of them anyway is kept as it is, marked
//! [`Coded::Plain`]. Reading back restores the exact text.

/// The fragments, longest first where one starts another, so the greedy
/// match takes the longer. Never reorder or remove an entry: stored records
/// refer to them by position. At most 31 (codes 1 to 31).
const FRAGMENTS: [&str; 31] = [
    "Mozilla/5.0 (compatible; ",
    "Mozilla/5.0 (",
    ") AppleWebKit/537.36 (KHTML, like Gecko) ",
    ") AppleWebKit/605.1.15 (KHTML, like Gecko) ",
    "Windows NT 10.0; Win64; x64",
    "Macintosh; Intel Mac OS X ",
    "X11; Linux x86_64",
    "Linux; Android ",
    "iPhone; CPU iPhone OS ",
    "iPad; CPU OS ",
    " like Mac OS X",
    " Mobile/15E148 Safari/604.1",
    " Mobile Safari/537.36",
    " Safari/537.36",
    ") Gecko/20100101 ",
    "Chrome/",
    "Firefox/",
    "Version/",
    "Safari/",
    " Edg/",
    " OPR/",
    ".0.0.0",
    "; rv:",
    " Mobile",
    "AppleWebKit/",
    "Gecko",
    "python-requests/",
    "okhttp/",
    "curl/",
    "Windows",
    "; ",
];

/// How [`encode`] wrote an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coded {
    /// Fragments replaced by their codes.
    Fragments,
    /// As given: the text holds a byte below 32.
    Plain,
}

/// The short form of `agent`, and how it was written.
pub(crate) fn encode(agent: &str) -> (Coded, Vec<u8>) {
    if agent.bytes().any(|b| b < 32) {
        return (Coded::Plain, agent.as_bytes().to_vec());
    }
    let mut out = Vec::with_capacity(agent.len());
    let mut rest = agent;
    while !rest.is_empty() {
        let found = FRAGMENTS
            .iter()
            .zip(1_u8..)
            .find(|(fragment, _)| rest.starts_with(*fragment));
        if let Some((fragment, code)) = found {
            out.push(code);
            rest = rest.get(fragment.len()..).unwrap_or_default();
        } else {
            let mut chars = rest.chars();
            let c = chars.next().unwrap_or_default();
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            rest = chars.as_str();
        }
    }
    (Coded::Fragments, out)
}

/// The agent [`encode`] wrote as `bytes`; `None` for bytes it cannot have
/// written (not UTF-8 once expanded).
pub(crate) fn decode(coded: Coded, bytes: &[u8]) -> Option<String> {
    if coded == Coded::Plain {
        return String::from_utf8(bytes.to_vec()).ok();
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    for &b in bytes {
        match b {
            1..=31 => out.extend_from_slice(FRAGMENTS.get(usize::from(b - 1))?.as_bytes()),
            _ => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENTS: &[&str] = &[
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "curl/8.5.0",
        "python-requests/2.32.3",
        "okhttp/4.12.0",
        "",
        "agent/1 (with: colons)",
        "Ünïcödé/1.0 ✓ Chrome/",
        "Chrome/Chrome/.0.0.0.0.0.0",
    ];

    #[test]
    fn every_agent_reads_back_as_it_was() {
        for agent in AGENTS {
            let (coded, bytes) = encode(agent);
            assert_eq!(coded, Coded::Fragments, "{agent}");
            assert_eq!(decode(coded, &bytes).as_deref(), Some(*agent), "{agent}");
        }
        for odd in ["tab\there", "nul\0", "\u{1}\u{1f}", "bell\u{7} Chrome/1"] {
            let (coded, bytes) = encode(odd);
            assert_eq!(coded, Coded::Plain, "{odd:?}");
            assert_eq!(decode(coded, &bytes).as_deref(), Some(odd));
        }
    }

    #[test]
    fn browser_agents_shrink_to_a_few_bytes() {
        let chrome = AGENTS[0];
        let (_, bytes) = encode(chrome);
        assert_eq!(chrome.len(), 101);
        assert!(bytes.len() <= 12, "{} bytes: {bytes:?}", bytes.len());
        for agent in AGENTS.iter().take(6) {
            let (_, bytes) = encode(agent);
            assert!(
                bytes.len() * 3 < agent.len(),
                "{agent}: {} bytes",
                bytes.len()
            );
        }
    }

    #[test]
    fn damaged_codes_are_refused() {
        assert_eq!(decode(Coded::Fragments, &[0xff, 0xfe]), None);
        assert_eq!(decode(Coded::Plain, &[0xc3]), None);
        assert_eq!(decode(Coded::Fragments, &[0]).as_deref(), Some("\0"));
    }

    #[test]
    fn fragments_fit_their_codes() {
        assert!(FRAGMENTS.len() <= 31);
        for (i, a) in FRAGMENTS.iter().enumerate() {
            assert!(a.bytes().all(|b| b >= 32), "{a}");
            // A fragment that starts a later one would hide it from the
            // greedy match.
            for b in FRAGMENTS.iter().skip(i + 1) {
                assert!(!b.starts_with(a), "{a:?} hides {b:?}");
            }
        }
    }
}
