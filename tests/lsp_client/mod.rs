//! A minimal Language Server client for tests: runs `strata lsp --stdio`,
//! frames JSON-RPC messages with Content-Length headers, answers the
//! server's requests, and checks that stdout carries nothing but frames.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Long enough for a debug build's first check on a slow, shared machine.
const TIMEOUT: Duration = Duration::from_secs(120);

pub struct Client {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Result<Value, String>>,
    /// Notifications and server requests not yet looked at.
    pending: VecDeque<Value>,
    /// Every request the server sent, in order.
    pub server_requests: Vec<Value>,
    next_id: i64,
    /// The server's stderr, once it exits.
    stderr: std::thread::JoinHandle<String>,
}

/// Reads one framed message: headers, a blank line, then the body.
fn read_frame(r: &mut impl BufRead) -> Result<Option<Value>, String> {
    let mut length = None;
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).map_err(|e| e.to_string())?;
        if n == 0 {
            return if length.is_none() {
                Ok(None)
            } else {
                Err("EOF inside headers".into())
            };
        }
        if line == "\r\n" {
            break;
        }
        let Some(header) = line.strip_suffix("\r\n") else {
            return Err(format!("header line without CRLF on stdout: {line:?}"));
        };
        match header.split_once(": ") {
            Some(("Content-Length", v)) => length = Some(v.parse::<usize>().map_err(|e| format!("{header}: {e}"))?),
            Some(("Content-Type", _)) => {}
            _ => return Err(format!("not a JSON-RPC header on stdout: {header:?}")),
        }
    }
    let length = length.ok_or("no Content-Length")?;
    let mut body = vec![0; length];
    r.read_exact(&mut body).map_err(|e| e.to_string())?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| format!("body is not JSON: {e}"))?;
    if value["jsonrpc"] != "2.0" {
        return Err(format!("not JSON-RPC 2.0: {value}"));
    }
    Ok(Some(value))
}

impl Client {
    /// Starts the server in `cwd` with `env` set.
    pub fn start(cwd: &Path, env: &[(&str, &Path)]) -> Client {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
        cmd.args(["lsp", "--stdio"])
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start strata lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (tx, incoming) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                match read_frame(&mut r) {
                    Ok(Some(v)) => {
                        if tx.send(Ok(v)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Client {
            child,
            stdin,
            incoming,
            pending: VecDeque::new(),
            server_requests: Vec::new(),
            next_id: 0,
            stderr,
        }
    }

    pub fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write to the server");
        self.stdin.flush().expect("flush");
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next message from the server; answers its requests on the way.
    fn next(&mut self, deadline: Instant) -> Value {
        let wait = deadline.saturating_duration_since(Instant::now());
        let message = match self.incoming.recv_timeout(wait) {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => panic!("bad output from the server on stdout: {e}"),
            Err(RecvTimeoutError::Timeout) => panic!("no message from the server within {TIMEOUT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the server closed stdout"),
        };
        if message.get("id").is_some() && message.get("method").is_some() {
            self.server_requests.push(message.clone());
            let result = match message["method"].as_str() {
                Some("window/showDocument") => json!({"success": true}),
                _ => Value::Null,
            };
            self.send(json!({"jsonrpc": "2.0", "id": message["id"], "result": result}));
        }
        message
    }

    /// Sends a request and returns its response (`result` or `error`),
    /// keeping what arrives meanwhile.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let m = self.next(deadline);
            if m.get("method").is_none() && m["id"] == id {
                return m;
            }
            self.pending.push_back(m);
        }
    }

    /// `call`, expecting a result.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let response = self.call(method, params);
        assert!(response.get("error").is_none(), "{method} failed: {response}");
        response["result"].clone()
    }

    /// The first notification (or server request) `method` that `accept`
    /// takes, waiting for it; earlier ones of that method are dropped, other
    /// messages kept.
    pub fn wait_for(&mut self, method: &str, accept: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        let mut found = None;
        self.pending.retain(|m| {
            if found.is_some() || m["method"] != method {
                return true;
            }
            if accept(&m["params"]) {
                found = Some(m.clone());
            }
            false
        });
        if let Some(m) = found {
            return m;
        }
        loop {
            let m = self.next(deadline);
            if m["method"] == method && accept(&m["params"]) {
                return m;
            }
            if m["method"] != method {
                self.pending.push_back(m);
            }
        }
    }

    /// The diagnostics pushed for `uri` at `version`.
    pub fn published(&mut self, uri: &str, version: i64) -> Vec<Value> {
        let m = self.wait_for("textDocument/publishDiagnostics", |p| p["uri"] == uri && p["version"] == version);
        m["params"]["diagnostics"].as_array().cloned().unwrap_or_default()
    }

    /// Everything received and not yet looked at.
    pub fn drain(&mut self) -> Vec<Value> {
        while let Ok(Ok(m)) = self.incoming.try_recv() {
            self.pending.push_back(m);
        }
        self.pending.drain(..).collect()
    }

    /// `shutdown` then `exit`; returns the exit code and stderr.
    pub fn shutdown(mut self) -> (i32, String) {
        let result = self.call("shutdown", Value::Null);
        assert_eq!(result["result"], Value::Null, "{result}");
        self.notify("exit", Value::Null);
        drop(self.stdin);
        let deadline = Instant::now() + TIMEOUT;
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        (code, self.stderr.join().unwrap_or_default())
    }
}

/// The byte offset of a protocol position (UTF-16 code units), written
/// independently of the server's.
pub fn offset(text: &str, line: u64, character: u64) -> usize {
    let mut start = 0;
    for _ in 0..line {
        start += text[start..].find('\n').map_or(text.len() - start, |i| i + 1);
    }
    let mut units = 0;
    for (i, c) in text[start..].char_indices() {
        if units >= character || c == '\n' {
            return start + i;
        }
        units += c.len_utf16() as u64;
    }
    text.len()
}

/// Applies LSP text edits (all relative to `text`) as a client would.
pub fn apply(text: &str, edits: &[Value]) -> String {
    let mut spans: Vec<(usize, usize, String)> = edits
        .iter()
        .map(|e| {
            let r = &e["range"];
            let at = |p: &Value| offset(text, p["line"].as_u64().unwrap(), p["character"].as_u64().unwrap());
            (at(&r["start"]), at(&r["end"]), e["newText"].as_str().unwrap().to_string())
        })
        .collect();
    spans.sort_by_key(|s| std::cmp::Reverse((s.0, s.1)));
    let mut out = text.to_string();
    for (start, end, new) in spans {
        out.replace_range(start..end, &new);
    }
    out
}

/// Client capabilities: push diagnostics unless `pull`.
pub fn capabilities(pull: bool) -> Value {
    let mut caps = json!({
        "workspace": {
            "didChangeWatchedFiles": {"dynamicRegistration": true},
            "workspaceEdit": {"documentChanges": true, "resourceOperations": ["create"]},
            "diagnostics": {"refreshSupport": true},
        },
        "window": {"showDocument": {"support": true}},
        "textDocument": {"publishDiagnostics": {"versionSupport": true}},
    });
    if pull {
        caps["textDocument"]["diagnostic"] = json!({"dynamicRegistration": false});
    }
    caps
}

pub fn uri(path: &Path) -> String {
    let mut s = String::from("file://");
    for b in path.to_str().expect("utf-8 path").bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}
