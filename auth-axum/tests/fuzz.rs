//! Arbitrary bytes and JSON values to every route never get a 5xx (S9, S11): a
//! deterministic, seeded fuzz pass over the whole document.

#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::indexing_slicing,
    reason = "test code"
)]

mod support;

use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::{Map, Value, json};
use support::{Api, PW};

/// xorshift64*: small, seeded, good enough to vary inputs reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
    fn string(&mut self) -> String {
        let pieces = [
            "",
            "a",
            "alice@example.com",
            "ALICE@EXAMPLE.COM",
            "\u{0}",
            "é",
            "\u{FDFA}",
            "😀",
            "' OR 1=1 --",
            "<script>",
            "null",
            "true",
            "../../etc/passwd",
            "purple otter sings",
            "x@y",
            " ",
            "\n",
            "\\",
        ];
        let mut s = String::new();
        for _ in 0..self.below(6) {
            let piece: &&str = self.pick(&pieces);
            s.push_str(piece);
        }
        if self.below(10) == 0 {
            s.push_str(&"z".repeat(self.below(5000)));
        }
        s
    }
    fn value(&mut self, depth: u32) -> Value {
        match self.below(if depth > 2 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => json!(self.below(2) == 0),
            2 => json!(self.next() as i64),
            3 => json!(f64::from(self.next() as u32) / 7.0),
            4 => json!(self.string()),
            5 => Value::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
            _ => self.object(depth + 1),
        }
    }
    fn object(&mut self, depth: u32) -> Value {
        let fields = [
            "email",
            "password",
            "token",
            "new_password",
            "current_password",
            "remember_me",
            "admin",
            "",
        ];
        let mut map = Map::new();
        for _ in 0..self.below(5) {
            let key = (*self.pick(&fields)).to_owned();
            let value = if self.below(2) == 0 {
                json!(self.string())
            } else {
                self.value(depth)
            };
            map.insert(key, value);
        }
        Value::Object(map)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_no_input_gets_a_5xx_on_any_route() {
    let api = Api::new();
    api.verified("alice@example.com").await;
    let cookie = api.login("alice@example.com", PW).await;
    let doc = api.get("/openapi.json", None).await.body;
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.push((
                Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap(),
                path.clone(),
            ));
        }
    }
    let content_types = [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "",
        "application/x-www-form-urlencoded",
    ];
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut sent = 0;
    for (method, path) in &routes {
        for _ in 0..120 {
            let id = match rng.below(3) {
                0 => "00000000-0000-0000-0000-000000000000".to_owned(),
                1 => rng
                    .string()
                    .replace(['/', '?', '#', '%', ' ', '\n', '\\', '<', '>', '"'], ""),
                _ => uuid_like(&mut rng),
            };
            let uri = path.replace("{id}", if id.is_empty() { "x" } else { &id });
            let mut request = Request::builder().method(method.clone()).uri(uri);
            let content_type = *rng.pick(&content_types);
            if !content_type.is_empty() {
                request = request.header(header::CONTENT_TYPE, content_type);
            }
            match rng.below(4) {
                0 => request = request.header(header::COOKIE, cookie.clone()),
                1 => {
                    request = request.header(
                        header::COOKIE,
                        format!(
                            "__Host-session={}",
                            rng.string().replace(['\n', '\0', ';'], "")
                        ),
                    );
                }
                _ => {}
            }
            let body = match rng.below(3) {
                0 => Body::from(rng.bytes(3000)),
                1 => Body::from(rng.value(0).to_string()),
                _ => Body::from(rng.object(0).to_string()),
            };
            let Ok(request) = request.body(body) else {
                continue;
            };
            let reply = api.send(request).await;
            assert!(
                !reply.status.is_server_error(),
                "{method} {path}: {} {}",
                reply.status,
                reply.text
            );
            if reply.status.is_client_error() {
                assert!(
                    reply.body["error"]["code"].is_string(),
                    "{method} {path}: not in the envelope: {}",
                    reply.text
                );
            }
            sent += 1;
        }
    }
    assert!(sent >= routes.len() * 100, "{sent}");
}

fn uuid_like(rng: &mut Rng) -> String {
    let hex = format!(
        "{:032x}",
        u128::from(rng.next()) << 64 | u128::from(rng.next())
    );
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
