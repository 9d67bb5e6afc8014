//! `strata lsp`: a Language Server over stdin/stdout.
//!
//! Built on rust-analyzer's `lsp-server` (the JSON-RPC framing and the
//! initialize/shutdown handshake) and `ls-types` (the protocol's types); see
//! docs/decisions/0001-language-server.md. One thread handles messages in
//! the order they arrive, as the protocol requires; checks run on it too
//! (with the engine's own parallelism), after every message already queued
//! has been handled, so a burst of keystrokes costs one check.
//!
//! Diagnostics are pushed (`textDocument/publishDiagnostics`) to clients
//! that do not pull them, and always answered when pulled
//! (`textDocument/diagnostic`). Positions are UTF-16 code units. Every
//! message is handled under `catch_unwind`: a panic fails that request (or
//! is logged, for a notification) and the server goes on. Errors and notes
//! go to the client's log (`window/logMessage`); stdout carries nothing but
//! the protocol.

use std::collections::{HashMap, HashSet};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};
use ls_types as lsp;
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

mod features;
mod lint;
mod text;

/// How long the server waits for quiet before it checks documents that an
/// edit of another document may have changed, or asks a pulling client to
/// pull again.
const SETTLE: Duration = Duration::from_millis(250);

/// Settings from the command line; the client may override them with
/// initialization options (`docsUrl`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub docs_url: String,
}

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// `shutdown` then `exit`, as the protocol asks.
    Shutdown,
    /// `exit` without `shutdown`, or the client closed the connection: the
    /// protocol asks for exit code 1.
    Abrupt,
}

#[derive(Debug, thiserror::Error)]
pub enum LspError {
    #[error("protocol error: {0}")]
    Protocol(#[from] lsp_server::ProtocolError),
    #[error("cannot talk over stdin/stdout: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode a message: {0}")]
    Json(#[from] serde_json::Error),
}

/// Serves on stdin/stdout until the client exits.
pub fn run(settings: Settings) -> Result<Ending, LspError> {
    let (connection, io_threads) = Connection::stdio();
    let ending = serve(&connection, settings);
    // The writer thread ends once every sender is gone.
    drop(connection);
    let joined = io_threads.join();
    let ending = ending?;
    joined?;
    Ok(ending)
}

/// Serves on `connection` until the client exits.
pub fn serve(connection: &Connection, settings: Settings) -> Result<Ending, LspError> {
    let (id, params) = connection.initialize_start()?;
    let mut server = Server::new(connection.sender.clone(), &params, settings);
    connection.initialize_finish(id, server.initialize_result())?;
    server.initialized();
    server.main_loop(connection)
}

/// What the client said it supports.
#[derive(Clone, Copy, Debug, Default)]
struct ClientCaps {
    /// It pulls diagnostics (`textDocument.diagnostic`): nothing is pushed.
    pull: bool,
    /// It re-pulls on `workspace/diagnostic/refresh`.
    refresh: bool,
    /// Watched files can be registered dynamically.
    watch: bool,
    edits: features::EditSupport,
}

impl ClientCaps {
    fn from_initialize(params: &Value) -> ClientCaps {
        let caps = &params["capabilities"];
        let flag = |pointer: &str| caps.pointer(pointer).and_then(Value::as_bool).unwrap_or(false);
        let resource_ops = caps
            .pointer("/workspace/workspaceEdit/resourceOperations")
            .and_then(Value::as_array)
            .is_some_and(|ops| ops.iter().any(|o| o == "create"));
        ClientCaps {
            pull: caps.pointer("/textDocument/diagnostic").is_some_and(Value::is_object),
            refresh: flag("/workspace/diagnostics/refreshSupport"),
            watch: flag("/workspace/didChangeWatchedFiles/dynamicRegistration"),
            edits: features::EditSupport {
                snippets: flag("/workspace/workspaceEdit/snippetEditSupport"),
                show_document: flag("/window/showDocument/support"),
                create_files: resource_ops && flag("/workspace/workspaceEdit/documentChanges"),
            },
        }
    }
}

/// The last check of a document.
struct Checked {
    version: i32,
    epoch: u64,
    diagnostics: Vec<crate::diag::Diagnostic>,
}

struct Document {
    uri: lsp::Uri,
    /// The file on disk, for `file:` URIs.
    path: Option<PathBuf>,
    text: String,
    version: i32,
    checked: Option<Checked>,
}

impl Document {
    fn current(&self, epoch: u64) -> Option<&Checked> {
        self.checked.as_ref().filter(|c| c.version == self.version && c.epoch == epoch)
    }
}

struct Server {
    sender: Sender<Message>,
    settings: Settings,
    caps: ClientCaps,
    docs: HashMap<lsp::Uri, Document>,
    workspaces: lint::Workspaces,
    /// Bumped by every change that may change any document's findings (an
    /// edit of any open document, a file on disk, the configuration).
    epoch: u64,
    /// Documents to check as soon as no message is waiting, most urgent first.
    urgent: Vec<lsp::Uri>,
    /// Documents to check once messages have stopped for [`SETTLE`].
    settle: HashSet<lsp::Uri>,
    /// A pulling client must be asked to pull again once things settle.
    refresh_due: bool,
    last_message: Instant,
    /// Problems already shown to the user (each once).
    shown: HashSet<String>,
    next_request: i32,
}

impl Server {
    fn new(sender: Sender<Message>, params: &Value, mut settings: Settings) -> Server {
        if let Some(url) = params.pointer("/initializationOptions/docsUrl").and_then(Value::as_str) {
            settings.docs_url = url.to_string();
        }
        let mut workspaces = lint::Workspaces::default();
        // The editor's folders and the working directory: a workspace there
        // may keep its migrations elsewhere (a core folder adopted in place).
        let folders = params["workspaceFolders"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["uri"].as_str())
            .chain(params["rootUri"].as_str())
            .filter_map(path_of_uri)
            .chain(std::env::current_dir().ok());
        for dir in folders {
            workspaces.add_folder(&dir);
        }
        Server {
            sender,
            settings,
            caps: ClientCaps::from_initialize(params),
            docs: HashMap::new(),
            workspaces,
            epoch: 0,
            urgent: Vec::new(),
            settle: HashSet::new(),
            refresh_due: false,
            last_message: Instant::now(),
            shown: HashSet::new(),
            next_request: 0,
        }
    }

    fn initialize_result(&self) -> Value {
        let files = json!({"filters": [
            {"scheme": "file", "pattern": {"glob": "**/*.{sql,toml,sum}", "matches": "file"}},
            {"scheme": "file", "pattern": {"glob": "**", "matches": "folder"}},
        ]});
        json!({
            "capabilities": {
                "positionEncoding": "utf-16",
                "textDocumentSync": {"openClose": true, "change": 2, "save": {"includeText": false}},
                "diagnosticProvider": {"identifier": "strata", "interFileDependencies": true, "workspaceDiagnostics": false},
                "hoverProvider": true,
                "codeActionProvider": {"codeActionKinds": ["quickfix"]},
                "executeCommandProvider": {"commands": [features::SELECT_COMMAND]},
                "workspace": {"fileOperations": {"didCreate": files, "didRename": files, "didDelete": files}},
            },
            "serverInfo": {"name": "strata", "version": env!("CARGO_PKG_VERSION")},
        })
    }

    /// Registers the file watchers: the configuration, the rules and every
    /// migration may change what a document's check finds.
    fn initialized(&mut self) {
        if !self.caps.watch {
            self.log(
                lsp::MessageType::INFO,
                "the client cannot register file watchers: files changed outside the editor are seen when a document is saved".into(),
            );
            return;
        }
        let watchers: Vec<Value> = ["**/*.sql", "**/*.toml", "**/strata.sum"]
            .iter()
            .map(|glob| json!({"globPattern": glob}))
            .collect();
        self.request(
            "client/registerCapability",
            json!({"registrations": [{
                "id": "strata-watched-files",
                "method": "workspace/didChangeWatchedFiles",
                "registerOptions": {"watchers": watchers},
            }]}),
        );
    }

    fn main_loop(&mut self, connection: &Connection) -> Result<Ending, LspError> {
        loop {
            let message = if !self.urgent.is_empty() {
                match connection.receiver.try_recv() {
                    Ok(m) => m,
                    Err(crossbeam_channel::TryRecvError::Empty) => {
                        let uri = self.urgent.remove(0);
                        self.guarded("check", None, |s| s.check_and_publish(&uri));
                        continue;
                    }
                    Err(crossbeam_channel::TryRecvError::Disconnected) => return Ok(Ending::Abrupt),
                }
            } else if !self.settle.is_empty() || self.refresh_due {
                let wait = SETTLE.saturating_sub(self.last_message.elapsed());
                match connection.receiver.recv_timeout(wait) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        self.guarded("check", None, |s| s.settle_one());
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return Ok(Ending::Abrupt),
                }
            } else {
                match connection.receiver.recv() {
                    Ok(m) => m,
                    Err(_) => return Ok(Ending::Abrupt),
                }
            };
            self.last_message = Instant::now();
            match message {
                Message::Request(req) => {
                    if connection.handle_shutdown(&req)? {
                        return Ok(Ending::Shutdown);
                    }
                    let id = req.id.clone();
                    let method = req.method.clone();
                    self.guarded(&method, Some(id), |s| s.on_request(req));
                }
                Message::Notification(n) if n.method == "exit" => return Ok(Ending::Abrupt),
                Message::Notification(n) => {
                    let method = n.method.clone();
                    self.guarded(&method, None, |s| s.on_notification(n));
                }
                Message::Response(r) => self.on_response(r),
            }
        }
    }

    /// Runs `f`; a panic is logged and, for a request, answered with an error.
    fn guarded(&mut self, what: &str, id: Option<RequestId>, f: impl FnOnce(&mut Server)) {
        let result = panic::catch_unwind(AssertUnwindSafe(|| f(self)));
        if let Err(payload) = result {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            let message = format!("strata failed on {what}: {why} (please report this with the document that caused it)");
            self.log(lsp::MessageType::ERROR, message.clone());
            if let Some(id) = id {
                self.respond(Response::new_err(id, ErrorCode::InternalError as i32, message));
            }
        }
    }

    fn send(&self, message: Message) {
        // A closed channel means the client is gone; the main loop ends.
        let _ = self.sender.send(message);
    }

    fn respond(&self, response: Response) {
        self.send(response.into());
    }

    fn notify(&self, method: &str, params: impl serde::Serialize) {
        self.send(Notification::new(method.to_string(), params).into());
    }

    fn request(&mut self, method: &str, params: Value) {
        self.next_request += 1;
        let id = RequestId::from(format!("strata-{}", self.next_request));
        self.send(Request::new(id, method.to_string(), params).into());
    }

    fn log(&self, kind: lsp::MessageType, message: String) {
        self.notify("window/logMessage", lsp::LogMessageParams { typ: kind, message });
    }

    /// Logs a problem, and shows it to the user the first time.
    fn warn_once(&mut self, message: String) {
        self.log(lsp::MessageType::WARNING, message.clone());
        if self.shown.insert(message.clone()) {
            self.notify(
                "window/showMessage",
                lsp::ShowMessageParams {
                    typ: lsp::MessageType::WARNING,
                    message,
                },
            );
        }
    }

    fn on_response(&self, response: Response) {
        if let Err(e) = response.response_result {
            self.log(
                lsp::MessageType::WARNING,
                format!("the client refused request {}: {}", response.id, e.message),
            );
        }
    }

    fn on_request(&mut self, req: Request) {
        let id = req.id.clone();
        let result = match req.method.as_str() {
            "textDocument/diagnostic" => params(req).map(|p| self.pull(p)),
            "textDocument/codeAction" => params(req).map(|p| self.code_actions(p)),
            "textDocument/hover" => params(req).map(|p| self.hover(p)),
            "workspace/executeCommand" => params(req).map(|p| self.execute(p)),
            method => Err((ErrorCode::MethodNotFound, format!("strata does not implement {method}"))),
        };
        self.respond(match result {
            Ok(value) => Response::new_ok(id, value),
            Err((code, message)) => Response::new_err(id, code as i32, message),
        });
    }

    fn on_notification(&mut self, n: Notification) {
        let method = n.method.clone();
        let result = match method.as_str() {
            "textDocument/didOpen" => params(n).map(|p| self.did_open(p)),
            "textDocument/didChange" => params(n).map(|p| self.did_change(p)),
            "textDocument/didClose" => params(n).map(|p| self.did_close(p)),
            "textDocument/didSave" => params(n).map(|p: lsp::DidSaveTextDocumentParams| {
                if !self.caps.watch {
                    if let Some(path) = file_path(&p.text_document.uri) {
                        self.files_changed(vec![path]);
                    }
                }
            }),
            "workspace/didChangeWatchedFiles" => params(n).map(|p: lsp::DidChangeWatchedFilesParams| {
                self.files_changed(p.changes.iter().filter_map(|c| file_path(&c.uri)).collect())
            }),
            "workspace/didRenameFiles" => params(n).map(|p: lsp::RenameFilesParams| {
                let paths = p
                    .files
                    .iter()
                    .flat_map(|f| [f.old_uri.as_str(), f.new_uri.as_str()])
                    .filter_map(path_of_uri)
                    .collect();
                self.files_changed(paths)
            }),
            "workspace/didCreateFiles" | "workspace/didDeleteFiles" => params(n).map(|p: Value| {
                let paths = p["files"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["uri"].as_str().and_then(path_of_uri))
                    .collect();
                self.files_changed(paths)
            }),
            "workspace/didChangeConfiguration" => {
                self.workspaces.clear();
                self.touch_all();
                Ok(())
            }
            // Requests are handled in order and at once: nothing to cancel.
            _ => Ok(()),
        };
        if let Err((_, message)) = result {
            self.log(lsp::MessageType::ERROR, format!("{method}: {message}"));
        }
    }

    fn did_open(&mut self, p: lsp::DidOpenTextDocumentParams) {
        let uri = p.text_document.uri;
        let path = file_path(&uri);
        // A file created since its workspace was loaded (by `strata new`, say)
        // is one of its migrations once the workspace is loaded again.
        if let Some(path) = &path {
            self.workspaces.role(path, true);
        }
        self.epoch += 1;
        self.docs.insert(
            uri.clone(),
            Document {
                uri: uri.clone(),
                path,
                text: p.text_document.text,
                version: p.text_document.version,
                checked: None,
            },
        );
        self.schedule(&uri);
    }

    fn did_change(&mut self, p: lsp::DidChangeTextDocumentParams) {
        let uri = p.text_document.uri;
        let Some(doc) = self.docs.get_mut(&uri) else {
            self.log(
                lsp::MessageType::WARNING,
                format!("didChange for {} which is not open", uri.as_str()),
            );
            return;
        };
        text::apply_changes(&mut doc.text, p.content_changes);
        doc.version = p.text_document.version;
        self.epoch += 1;
        self.schedule(&uri);
    }

    fn did_close(&mut self, p: lsp::DidCloseTextDocumentParams) {
        let uri = p.text_document.uri;
        if self.docs.remove(&uri).is_none() {
            return;
        }
        self.urgent.retain(|u| *u != uri);
        self.settle.remove(&uri);
        self.epoch += 1;
        if !self.caps.pull {
            self.notify(
                "textDocument/publishDiagnostics",
                lsp::PublishDiagnosticsParams {
                    uri,
                    diagnostics: Vec::new(),
                    version: None,
                },
            );
        }
        // Its text no longer stands in for the file on disk.
        self.touch_all();
    }

    /// Files on disk changed: the workspaces they belong to load again and
    /// every open document is checked again.
    fn files_changed(&mut self, paths: Vec<PathBuf>) {
        for path in &paths {
            self.workspaces.invalidate(path);
        }
        self.log(
            lsp::MessageType::LOG,
            format!("{} file(s) changed on disk: checking again", paths.len()),
        );
        self.touch_all();
    }

    /// The edited document is checked first, the others once edits settle.
    fn schedule(&mut self, uri: &lsp::Uri) {
        if self.caps.pull {
            self.refresh_due = self.caps.refresh && self.docs.len() > 1;
            return;
        }
        self.urgent.retain(|u| u != uri);
        self.urgent.insert(0, uri.clone());
        self.settle.remove(uri);
        let others: Vec<lsp::Uri> = self.docs.keys().filter(|u| *u != uri).cloned().collect();
        self.settle.extend(others);
    }

    /// Every open document may have changed.
    fn touch_all(&mut self) {
        self.epoch += 1;
        if self.caps.pull {
            self.refresh_due = self.caps.refresh;
            return;
        }
        let all: Vec<lsp::Uri> = self.docs.keys().cloned().collect();
        self.settle.extend(all);
    }

    fn settle_one(&mut self) {
        if let Some(uri) = self.settle.iter().next().cloned() {
            self.settle.remove(&uri);
            self.check_and_publish(&uri);
        } else if self.refresh_due {
            self.refresh_due = false;
            self.request("workspace/diagnostic/refresh", Value::Null);
        }
    }

    /// Checks a document unless its last check is current.
    fn ensure_checked(&mut self, uri: &lsp::Uri) -> Option<&Document> {
        let epoch = self.epoch;
        let doc = self.docs.get(uri)?;
        if doc.current(epoch).is_none() {
            let open: Vec<lint::Doc> = self
                .docs
                .values()
                .filter(|d| d.uri != *uri)
                .map(|d| lint::Doc {
                    path: d.path.as_deref(),
                    text: &d.text,
                })
                .collect();
            let this = lint::Doc {
                path: doc.path.as_deref(),
                text: &doc.text,
            };
            let started = Instant::now();
            let linted = self.workspaces.lint(&this, &open);
            let elapsed = started.elapsed();
            let version = doc.version;
            let shown = doc
                .path
                .as_deref()
                .map_or_else(|| uri.as_str().to_string(), |p| p.display().to_string());
            self.log(
                lsp::MessageType::LOG,
                format!(
                    "checked {shown} (version {version}, {:?}): {} finding(s) in {:.1} ms",
                    linted.role,
                    linted.diagnostics.len(),
                    elapsed.as_secs_f64() * 1000.0
                ),
            );
            if let Some(why) = linted.degraded {
                self.warn_once(format!("strata checked {shown} on its own, without its workspace's history: {why}"));
            }
            let doc = self.docs.get_mut(uri)?;
            doc.checked = Some(Checked {
                version,
                epoch,
                diagnostics: linted.diagnostics,
            });
        }
        self.docs.get(uri)
    }

    fn check_and_publish(&mut self, uri: &lsp::Uri) {
        let docs_url = self.settings.docs_url.clone();
        let Some(doc) = self.ensure_checked(uri) else { return };
        let Some(checked) = &doc.checked else { return };
        let diagnostics = checked.diagnostics.iter().map(|d| features::to_lsp(d, &docs_url)).collect();
        let params = lsp::PublishDiagnosticsParams {
            uri: uri.clone(),
            diagnostics,
            version: Some(checked.version),
        };
        self.notify("textDocument/publishDiagnostics", params);
    }

    fn pull(&mut self, p: lsp::DocumentDiagnosticParams) -> Value {
        let uri = p.text_document.uri;
        self.urgent.retain(|u| *u != uri);
        let docs_url = self.settings.docs_url.clone();
        let epoch = self.epoch;
        let Some(doc) = self.ensure_checked(&uri) else {
            // Not open: nothing is known about it.
            return json!({"kind": "full", "items": []});
        };
        let Some(checked) = &doc.checked else {
            return json!({"kind": "full", "items": []});
        };
        let result_id = format!("{epoch}:{}", checked.version);
        if p.previous_result_id.as_deref() == Some(result_id.as_str()) {
            return json!({"kind": "unchanged", "resultId": result_id});
        }
        let items: Vec<lsp::Diagnostic> = checked.diagnostics.iter().map(|d| features::to_lsp(d, &docs_url)).collect();
        json!({"kind": "full", "resultId": result_id, "items": items})
    }

    fn hover(&mut self, p: lsp::HoverParams) -> Value {
        let uri = p.text_document_position_params.text_document.uri;
        let pos = p.text_document_position_params.position;
        let docs_url = self.settings.docs_url.clone();
        let Some(doc) = self.ensure_checked(&uri) else { return Value::Null };
        let hover = doc.checked.as_ref().and_then(|c| features::hover(&c.diagnostics, pos, &docs_url));
        serde_json::to_value(hover).unwrap_or(Value::Null)
    }

    fn code_actions(&mut self, p: lsp::CodeActionParams) -> Value {
        let uri = p.text_document.uri;
        let docs_url = self.settings.docs_url.clone();
        let support = self.caps.edits;
        let wanted = p
            .context
            .only
            .as_ref()
            .is_none_or(|kinds| kinds.iter().any(|k| k.as_str() == "quickfix" || "quickfix".starts_with(k.as_str())));
        if !wanted {
            return json!([]);
        }
        let Some(doc) = self.ensure_checked(&uri) else { return json!([]) };
        let Some(checked) = &doc.checked else { return json!([]) };
        let action_doc = features::ActionDoc {
            uri: &doc.uri,
            path: doc.path.as_deref(),
            text: &doc.text,
            version: doc.version,
        };
        Value::Array(features::code_actions(
            &action_doc,
            &checked.diagnostics,
            p.range,
            support,
            &docs_url,
        ))
    }

    /// `strata.selectRange [uri, range]`: selects the reason an ignore
    /// action inserted, for the user to type over.
    fn execute(&mut self, p: lsp::ExecuteCommandParams) -> Value {
        if p.command == features::SELECT_COMMAND {
            if let [uri, range] = p.arguments.as_slice() {
                self.request("window/showDocument", json!({"uri": uri, "takeFocus": true, "selection": range}));
            }
        }
        Value::Null
    }
}

type Failure = (ErrorCode, String);

/// The typed parameters of a request or notification.
fn params<P: DeserializeOwned>(message: impl Into<Parameters>) -> Result<P, Failure> {
    let Parameters(method, value) = message.into();
    serde_json::from_value(value).map_err(|e| (ErrorCode::InvalidParams, format!("invalid parameters for {method}: {e}")))
}

struct Parameters(String, Value);

impl From<Request> for Parameters {
    fn from(r: Request) -> Self {
        Parameters(r.method, r.params)
    }
}

impl From<Notification> for Parameters {
    fn from(n: Notification) -> Self {
        Parameters(n.method, n.params)
    }
}

fn file_path(uri: &lsp::Uri) -> Option<PathBuf> {
    let scheme = uri.scheme().as_str();
    if !scheme.eq_ignore_ascii_case("file") {
        return None;
    }
    uri.to_file_path().map(|p| p.into_owned())
}

fn path_of_uri(uri: &str) -> Option<PathBuf> {
    uri.parse::<lsp::Uri>().ok().as_ref().and_then(file_path)
}
