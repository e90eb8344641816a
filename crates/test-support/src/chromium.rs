//! A tiny DevTools-protocol driver for headless Chromium (the Debian package `chromium`), for
//! tests that open the HTML pages the tools write (report.html, skeleton viewers) in a real
//! browser: load a `file://` page, run JavaScript in it, and collect what went wrong (console
//! errors, uncaught exceptions, log errors, and any request that leaves the page's own file).
//!
//! Written here rather than taken from a crate: the browser-automation crates either fetch a
//! browser build of their own (impossible offline) or track one Chromium's generated protocol;
//! the four commands used here (createTarget, attachToTarget, navigate, evaluate) are stable,
//! and a websocket (tungstenite) is all they need.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// The flags that make Chromium headless, quiet and offline-friendly in this workplace.
pub const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The Chromium executable (`chromium`, `chromium-browser`, or env `CHROMIUM`), when installed.
pub fn chromium_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| [d.join("chromium"), d.join("chromium-browser")])
        .find(|p| p.is_file())
}

/// A headless Chromium with one page, killed on drop.
pub struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    /// Problems seen on the page since the last navigation.
    problems: Vec<String>,
    load_fired: bool,
    _profile: tempfile::TempDir,
}

const DEADLINE: Duration = Duration::from_secs(60);

impl Browser {
    /// Starts Chromium with a fresh profile and opens one blank page.
    pub fn launch() -> Self {
        let exe = chromium_path().expect(
            "Chromium is not installed: run scripts/setup.sh (installs the Debian package \
             `chromium`)",
        );
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(&exe)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(["--remote-debugging-port=0", "about:blank"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let url = devtools_url(stderr_lines(&mut child));
        let (ws, _) = tungstenite::connect(url.as_str()).expect("connect to DevTools");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_millis(200))).expect("read timeout");
        }
        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            problems: Vec::new(),
            load_fired: false,
            _profile: profile,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].clone();
        let attached =
            b.call("Target.attachToTarget", json!({"targetId": target_id, "flatten": true}));
        b.session = attached["sessionId"].as_str().expect("sessionId").to_string();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable", "Network.enable"] {
            b.call(domain, json!({}));
        }
        b
    }

    /// Opens `file` (a `#fragment` may follow) and waits for its load event; clears the
    /// problems seen before.
    pub fn open(&mut self, file: &Path, fragment: &str) {
        let abs = file.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let url = format!("file://{}{fragment}", abs.display());
        self.problems.clear();
        self.load_fired = false;
        let nav = self.call("Page.navigate", json!({"url": url}));
        assert!(nav.get("errorText").is_none(), "navigating to {url}: {nav}");
        let deadline = Instant::now() + DEADLINE;
        while !self.load_fired {
            assert!(Instant::now() < deadline, "{url} did not load within {DEADLINE:?}");
            self.pump();
        }
    }

    /// Evaluates a JavaScript expression in the page and returns its value (as JSON).
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("evaluating {expression}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Lays pages out in a `width` x `height` viewport (call before [`Browser::open`]).
    pub fn set_viewport(&mut self, width: u32, height: u32) {
        let metrics =
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false});
        self.call("Emulation.setDeviceMetricsOverride", metrics);
    }

    /// A PNG of the viewport as it is now, scrolled or not. Chromium's `--screenshot` flag
    /// draws a page that scrolled while loading (a viewer opened with `#q=...`) as a blank
    /// image; the DevTools capture does not.
    pub fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let data = shot["data"].as_str().expect("screenshot data");
        base64::engine::general_purpose::STANDARD.decode(data).expect("base64 PNG")
    }

    /// Console errors, uncaught exceptions, error log entries and outside requests since the
    /// page was opened (waits a moment for late ones).
    pub fn problems(&mut self) -> Vec<String> {
        let until = Instant::now() + Duration::from_millis(300);
        while Instant::now() < until {
            self.pump();
        }
        self.problems.clone()
    }

    /// Sends a command (on the page's session once attached) and waits for its answer.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws.send(Message::text(msg.to_string())).expect("send to DevTools");
        let deadline = Instant::now() + DEADLINE;
        loop {
            assert!(Instant::now() < deadline, "no answer to {method} within {DEADLINE:?}");
            if let Some(answer) = self.receive() {
                if answer["id"] == id {
                    assert!(answer.get("error").is_none(), "{method}: {answer}");
                    return answer["result"].clone();
                }
                self.note_event(&answer);
            }
        }
    }

    /// Reads and handles whatever arrives within the read timeout.
    fn pump(&mut self) {
        if let Some(v) = self.receive() {
            self.note_event(&v);
        }
    }

    fn receive(&mut self) -> Option<Value> {
        match self.ws.read() {
            Ok(Message::Text(t)) => serde_json::from_str(t.as_str()).ok(),
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("DevTools connection: {e}"),
        }
    }

    /// Remembers the load event and every kind of problem.
    fn note_event(&mut self, v: &Value) {
        let p = &v["params"];
        match v["method"].as_str().unwrap_or_default() {
            "Page.loadEventFired" => self.load_fired = true,
            "Runtime.exceptionThrown" => {
                self.problems.push(format!("uncaught exception: {}", p["exceptionDetails"]))
            }
            "Runtime.consoleAPICalled" if p["type"] == "error" || p["type"] == "assert" => {
                self.problems.push(format!("console.{}: {}", p["type"], p["args"]))
            }
            "Log.entryAdded" if p["entry"]["level"] == "error" => {
                self.problems.push(format!("log error: {}", p["entry"]["text"]))
            }
            "Network.requestWillBeSent" => {
                let url = p["request"]["url"].as_str().unwrap_or_default();
                if !(url.starts_with("file:") || url.starts_with("data:")) {
                    self.problems.push(format!("request to {url}"));
                }
            }
            _ => {}
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium's stderr lines, as they come (a thread keeps draining them).
fn stderr_lines(child: &mut Child) -> Receiver<String> {
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// The browser's DevTools websocket, from its `DevTools listening on ws://...` line.
fn devtools_url(lines: Receiver<String>) -> String {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => match line.split_once("DevTools listening on ") {
                Some((_, url)) => {
                    // Keep draining stderr so that Chromium never blocks on a full pipe.
                    std::thread::spawn(move || lines.iter().for_each(drop));
                    return url.trim().to_string();
                }
                None => seen.push(line),
            },
            Err(_) => panic!("Chromium gave no DevTools address; stderr:\n{}", seen.join("\n")),
        }
    }
}
