//! Drives the real server binary over HTTP: a process per server on a free port,
//! its output captured line by line, a tiny HTTP/1.1 client, and mail read from
//! the server's console output or from a MailDev SMTP sink's HTTP API.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    reason = "test support: a failure is a failed test; a skip says why"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

#[cfg(feature = "postgres")]
pub(crate) mod services;

pub(crate) const SECRET: &str = "e2e-secret-key-0123456789abcdef-0123456789";

/// A running server process; killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) stdout: Arc<Mutex<Vec<String>>>,
    pub(crate) stderr: Arc<Mutex<Vec<String>>>,
}

fn capture(stream: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

impl Server {
    /// Starts the binary with only `env` (plus PATH) in its environment.
    pub(crate) fn start(env: &[(&str, &str)]) -> Self {
        Self::start_with(&[], env)
    }

    /// Starts the binary with `args` and only `env` (plus PATH) in its environment.
    pub(crate) fn start_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_example-server"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        command
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("SECRET_KEY", SECRET);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let stdout = capture(child.stdout.take().unwrap());
        let stderr = capture(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let found = stdout.lock().unwrap().iter().find_map(|l| {
                l.split("listening on http://")
                    .nth(1)
                    .and_then(|a| a.trim().parse::<SocketAddr>().ok())
            });
            if let Some(addr) = found {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("server exited with {status}: {:?}", stderr.lock().unwrap());
            }
            assert!(
                Instant::now() < deadline,
                "server did not start: {:?}",
                stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Self {
            child,
            addr,
            stdout,
            stderr,
        }
    }

    /// Every line it printed so far.
    pub(crate) fn output(&self) -> String {
        let mut all = self.stdout.lock().unwrap().join("\n");
        all.push('\n');
        all.push_str(&self.stderr.lock().unwrap().join("\n"));
        all
    }

    /// Its log lines (standard error).
    pub(crate) fn logs(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory in KiB (`VmRSS` of /proc/<pid>/status).
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Sends SIGTERM without waiting.
    pub(crate) fn terminate(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    /// Its exit status, if it exits within `within`.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn client(&self) -> Client {
        Client {
            addr: self.addr,
            cookie: None,
            headers: Vec::new(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: String,
}

impl Response {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    pub(crate) fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A minimal HTTP/1.1 client with one cookie (the session).
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) addr: SocketAddr,
    pub(crate) cookie: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
}

impl Client {
    pub(crate) fn request(&mut self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let response = raw_request(
            self.addr,
            method,
            path,
            body.map(Value::to_string).as_deref(),
            self.cookie.as_deref(),
            &self.headers,
        );
        if let Some(set) = response.header("set-cookie") {
            let pair = set.split(';').next().unwrap_or("").to_owned();
            self.cookie = if set.contains("Max-Age=0") {
                None
            } else {
                Some(pair)
            };
        }
        response
    }
    pub(crate) fn post(&mut self, path: &str, body: &Value) -> Response {
        self.request("POST", path, Some(body))
    }
    pub(crate) fn get(&mut self, path: &str) -> Response {
        self.request("GET", path, None)
    }
}

/// One request on a fresh connection.
pub(crate) fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    cookie: Option<&str>,
    extra: &[(String, String)],
) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nUser-Agent: e2e-test\r\n");
    if !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(cookie) = cookie {
        head.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    let body = body.unwrap_or("");
    if method != "GET" {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse(&raw)
}

fn parse(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = BTreeMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 {
            break;
        }
        out.push_str(rest.get(..n).unwrap_or(rest));
        s = rest.get(n + 2..).unwrap_or("");
    }
    out
}

/// Where a test reads the emails a server sent.
pub(crate) enum Mailbox<'a> {
    /// The console mailer's output on the server's standard output.
    Console(&'a Server),
    /// A MailDev sink's HTTP API, e.g. `http://127.0.0.1:1080`.
    MailDev(SocketAddr),
}

impl Mailbox<'_> {
    /// The newest link to `path` (e.g. `/verify-email`) in a message to `to`,
    /// waiting up to 20 seconds, skipping links already seen.
    pub(crate) fn link(&self, to: &str, path: &str, seen: &mut Vec<String>) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let links = self.links(to, path);
            if let Some(link) = links.into_iter().rev().find(|l| !seen.contains(l)) {
                seen.push(link.clone());
                return link;
            }
            assert!(Instant::now() < deadline, "no new {path} mail to {to}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn links(&self, to: &str, path: &str) -> Vec<String> {
        match self {
            Self::Console(server) => {
                let out = server.stdout.lock().unwrap().clone();
                let mut links = Vec::new();
                let mut current_to = String::new();
                for line in out {
                    if let Some(rcpt) = line.strip_prefix("To: ") {
                        current_to = rcpt.to_owned();
                    } else if current_to == to && line.contains(path) && line.contains("token=") {
                        links.push(line.trim().to_owned());
                    }
                }
                links
            }
            Self::MailDev(api) => {
                let all = raw_request(*api, "GET", "/api/email", None, None, &[]).json();
                let mut links = Vec::new();
                for mail in all.as_array().cloned().unwrap_or_default() {
                    let rcpt = mail["to"].as_array().cloned().unwrap_or_default();
                    if !rcpt.iter().any(|r| r["address"] == to) {
                        continue;
                    }
                    let text = mail["text"].as_str().unwrap_or("");
                    links.extend(
                        text.lines()
                            .filter(|l| l.contains(path) && l.contains("token="))
                            .map(|l| l.trim().to_owned()),
                    );
                }
                links
            }
        }
    }

    /// Subjects of every message to `to`.
    pub(crate) fn subjects(&self, to: &str) -> Vec<String> {
        match self {
            Self::Console(server) => {
                let out = server.stdout.lock().unwrap().clone();
                let mut subjects = Vec::new();
                let mut current_to = String::new();
                for line in out {
                    if let Some(rcpt) = line.strip_prefix("To: ") {
                        current_to = rcpt.to_owned();
                    } else if let Some(s) =
                        line.strip_prefix("Subject: ").filter(|_| current_to == to)
                    {
                        subjects.push(s.to_owned());
                    }
                }
                subjects
            }
            Self::MailDev(api) => {
                let all = raw_request(*api, "GET", "/api/email", None, None, &[]).json();
                all.as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|m| {
                        m["to"]
                            .as_array()
                            .is_some_and(|r| r.iter().any(|r| r["address"] == to))
                    })
                    .map(|m| m["subject"].as_str().unwrap_or("").to_owned())
                    .collect()
            }
        }
    }
}

/// The code an authenticator app holding `secret` (base32) shows `ahead`
/// steps from now (the server accepts one step either way).
pub(crate) fn totp_at(secret: &str, ahead: i64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret)
        .unwrap()
        .as_ref()
        .to_vec();
    let totp = totp_rs::Builder::new().with_secret(bytes).build().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() + 30 * ahead;
    totp.generate(u64::try_from(now).unwrap()).to_string()
}

/// The code an authenticator app holding `secret` shows now.
pub(crate) fn totp_now(secret: &str) -> String {
    totp_at(secret, 0)
}

/// Enrols TOTP for the client's user and signs in twice through the second
/// step: once with a code computed from the secret, once with a recovery
/// code (S15). Returns the secrets it saw. The client ends signed in.
pub(crate) fn two_step_journey(
    server: &Server,
    mail: &Mailbox<'_>,
    c: &mut Client,
    email: &str,
    password: &str,
) -> Vec<String> {
    let r = c.post("/api/v1/users/me/mfa/totp", &serde_json::json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = r.json()["secret"].as_str().unwrap().to_owned();
    let r = c.post(
        "/api/v1/users/me/mfa/totp/confirm",
        &serde_json::json!({"code": totp_now(&secret)}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let codes: Vec<String> = r.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let mut secrets = vec![secret.clone(), codes[0].clone()];
    let mut sign_in = |answer: Value| {
        let mut fresh = server.client();
        let r = fresh.post(
            "/api/v1/auth/login",
            &serde_json::json!({"email": email, "password": password}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            fresh.cookie.is_none(),
            "no session before the second factor"
        );
        let challenge = r.json()["second_factor_required"]["challenge"]
            .as_str()
            .unwrap()
            .to_owned();
        secrets.push(challenge.clone());
        let mut body = answer;
        body["challenge"] = challenge.into();
        let r = fresh.post("/api/v1/auth/login/second-factor", &body);
        assert_eq!(r.status, 200, "{}", r.body);
        (fresh, r.json()["session"]["methods"].clone())
    };
    // The confirming code's step is used: the next step's code is new, and
    // within the one step of skew the server allows.
    let (_, methods) = sign_in(serde_json::json!({"code": totp_at(&secret, 1)}));
    assert_eq!(methods, serde_json::json!(["password", "totp"]));
    let (fresh, methods) = sign_in(serde_json::json!({"recovery_code": codes[0]}));
    assert_eq!(methods, serde_json::json!(["password", "recovery_code"]));
    *c = fresh;
    let r = c.get("/api/v1/users/me/mfa");
    assert_eq!(r.json()["recovery_codes_left"], 9, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let subjects = mail.subjects(email);
        let has = |s: &str| subjects.iter().any(|x| x.contains(s));
        if has("two-step sign-in turned on") && has("a recovery code was used") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "owner mails missing: {subjects:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    secrets
}

/// The token of a link.
pub(crate) fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap_or("").to_owned()
}

/// The journey of the issue, against any server and mailbox. Returns the
/// secrets it used, so the caller can check that none reached the logs.
pub(crate) fn full_journey(
    server: &Server,
    mail: &Mailbox<'_>,
    public_url: &str,
    email: &str,
) -> Vec<String> {
    let password = "e2e purple otter sings";
    let (second, third) = ("e2e second passphrase", "e2e third passphrase");
    let mut secrets: Vec<String> = vec![password.into(), second.into(), third.into()];
    let mut seen = Vec::new();
    let mut c = server.client();

    let r = c.post(
        "/api/v1/auth/register",
        &serde_json::json!({"email": email, "password": password}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let link = mail.link(email, "/auth/verify-email", &mut seen);
    assert!(
        link.starts_with(&format!("{public_url}/auth/verify-email?token=")),
        "{link}"
    );
    secrets.push(token_of(&link));
    let r = c.post(
        "/api/v1/auth/verify-email",
        &serde_json::json!({"token": token_of(&link)}),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let r = c.post(
        "/api/v1/auth/login",
        &serde_json::json!({"email": email, "password": password}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let first_cookie = c.cookie.clone().expect("session cookie");
    secrets.push(first_cookie.split_once('=').unwrap().1.to_owned());
    assert_eq!(c.get("/api/v1/users/me").json()["email"], email);

    let r = c.post(
        "/api/v1/auth/password/change",
        &serde_json::json!({"current_password": password, "new_password": second}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let new_cookie = c.cookie.clone().expect("reissued cookie");
    secrets.push(new_cookie.split_once('=').unwrap().1.to_owned());
    assert_ne!(first_cookie, new_cookie);
    let mut old = c.clone();
    old.cookie = Some(first_cookie);
    assert_eq!(
        old.get("/api/v1/users/me").status,
        401,
        "the old cookie is dead"
    );
    assert_eq!(c.get("/api/v1/users/me").status, 200, "the new one works");

    // Forged Host and X-Forwarded-Host never reach the emailed link (Django CVE-2012-4520).
    let mut forger = server.client();
    forger.headers = vec![
        ("Host".into(), "evil.example".into()),
        ("X-Forwarded-Host".into(), "evil.example".into()),
    ];
    let r = forger.post(
        "/api/v1/auth/password/forgot",
        &serde_json::json!({"email": email}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let link = mail.link(email, "/auth/reset-password", &mut seen);
    assert!(
        link.starts_with(&format!("{public_url}/auth/reset-password?token=")),
        "{link}"
    );
    assert!(!link.contains("evil.example"));
    secrets.push(token_of(&link));
    let r = c.post(
        "/api/v1/auth/password/reset",
        &serde_json::json!({"token": token_of(&link), "new_password": third}),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(r.header("set-cookie").is_none(), "no automatic login");
    assert_eq!(c.get("/api/v1/users/me").status, 401, "every session died");

    let r = c.post(
        "/api/v1/auth/login",
        &serde_json::json!({"email": email, "password": third}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    secrets.push(
        c.cookie
            .clone()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned(),
    );

    secrets.extend(two_step_journey(server, mail, &mut c, email, third));

    // Failed logins up to the lockout.
    let mut attacker = server.client();
    for _ in 0..5 {
        let r = attacker.post(
            "/api/v1/auth/login",
            &serde_json::json!({"email": email, "password": "wrong password!"}),
        );
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let r = attacker.post(
        "/api/v1/auth/login",
        &serde_json::json!({"email": email, "password": third}),
    );
    assert_eq!((r.status, r.code().as_str()), (429, "locked"), "{}", r.body);
    assert!(
        r.header("retry-after")
            .is_some_and(|s| s.parse::<u64>().unwrap() >= 1)
    );

    let r = c.post("/api/v1/auth/logout", &serde_json::json!({}));
    assert_eq!(r.status, 204);
    assert_eq!(c.get("/api/v1/users/me").status, 401);
    secrets
}

/// Fails when any of `secrets` appears in `logs` (S10).
pub(crate) fn assert_no_secrets(logs: &str, secrets: &[String]) {
    assert!(!logs.is_empty(), "no logs captured");
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret ({} chars) leaked into the logs",
            secret.len()
        );
    }
}
