//! Throwaway PostgreSQL clusters: `initdb` into a temporary folder, a server
//! on a unix socket only (`listen_addresses = ''`), trust authentication and
//! `wal_level = logical`. `strata drift --scratch auto` and the test suite use
//! this same code.
//!
//! Why the postmaster is spawned directly (not with `pg_ctl start`): it stays
//! our child, in its own process group, with a parent-death signal (SIGQUIT,
//! PostgreSQL's immediate shutdown) set by `prctl(PR_SET_PDEATHSIG)`. So no
//! server outlives strata or a test binary, even after SIGKILL. The death
//! signal fires when the *thread* that spawned the child ends, so a keeper
//! thread spawns it and lives exactly as long as the cluster.
//!
//! As root, initdb and the server run as the `postgres` OS user (PostgreSQL
//! refuses to run as root).

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use super::bindir::{find_bindir, find_bindir_for};
use super::bindir::{has_server, major_of, INSTALL_HINT};
use super::{Error, Result, Target};

const SUPERUSER: &str = "postgres";
const DIR_PREFIX: &str = "strata-pg-";

/// A running throwaway cluster. Dropping it stops the server (immediate
/// shutdown) and removes its folder, also while unwinding from a panic.
pub struct TempCluster {
    root: PathBuf,
    port: u16,
    bindir: PathBuf,
    major: u32,
    /// uid and gid of the `postgres` OS user, when strata runs as root.
    ids: Option<(u32, u32)>,
    /// Listens on 127.0.0.1 too; more server settings (`name=value`).
    tcp: bool,
    settings: Vec<String>,
    dir: Mutex<Option<tempfile::TempDir>>,
    server: Mutex<Option<Server>>,
}

/// Where a throwaway cluster comes from: the folder of its binaries (else
/// `find_bindir`) and the folder its data goes under (else the system's
/// temporary folder); and how it differs from the default (socket only,
/// trust), for the TLS and password tests.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    pub bindir: Option<PathBuf>,
    pub parent: Option<PathBuf>,
    /// Also listen on 127.0.0.1, at the cluster's port.
    pub tcp: bool,
    /// pg_hba.conf lines appended after `local all all trust` (which keeps
    /// the socket open to the superuser for setting the cluster up).
    pub hba: Option<String>,
    /// Files written into the data folder before the server starts (name,
    /// contents), readable by the server's user only (server keys need it).
    pub files: Vec<(String, Vec<u8>)>,
    /// More server settings (`name=value`).
    pub settings: Vec<String>,
}

/// The postmaster's keeper thread.
struct Server {
    /// A signal to stop with (or a dropped sender: immediate shutdown).
    stop: mpsc::Sender<libc::c_int>,
    keeper: JoinHandle<()>,
}

/// uid and gid of an OS user.
fn os_user(name: &str) -> Option<(u32, u32)> {
    let c = CString::new(name).ok()?;
    // SAFETY: getpwnam returns null or a pointer to static storage that we
    // read immediately (no other thread of ours calls getpwnam meanwhile).
    unsafe {
        let pw = libc::getpwnam(c.as_ptr());
        if pw.is_null() {
            None
        } else {
            Some(((*pw).pw_uid, (*pw).pw_gid))
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0 && (unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// A TCP port nobody listens on: the server's TCP port when it listens on
/// 127.0.0.1, else only the name of its socket file (`.s.PGSQL.<port>`).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(54329)
}

/// Removes the folders of clusters whose owning process is gone (a SIGKILLed
/// test binary cannot run its cleanup; its server died with it).
fn sweep_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(DIR_PREFIX) {
            continue;
        }
        let path = e.path();
        let owner: Option<i32> = std::fs::read_to_string(path.join("owner.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let postmaster: Option<i32> = std::fs::read_to_string(path.join("data/postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()));
        if owner.is_some_and(|p| !process_alive(p)) && !postmaster.is_some_and(process_alive) {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

impl TempCluster {
    /// initdb and start a server of the PostgreSQL found by [`find_bindir`];
    /// returns once it accepts connections.
    pub fn start() -> Result<TempCluster> {
        TempCluster::start_with(&ClusterOptions::default())
    }

    /// `start` with the binaries and the data folder given.
    pub fn start_with(options: &ClusterOptions) -> Result<TempCluster> {
        let bindir = match &options.bindir {
            Some(dir) if has_server(dir) => dir.clone(),
            Some(dir) => {
                return Err(Error::Cluster(format!(
                    "{} holds no initdb and postgres binaries: {INSTALL_HINT}",
                    dir.display()
                )))
            }
            None => find_bindir()?,
        };
        let (major, _) =
            major_of(&bindir).ok_or_else(|| Error::Cluster(format!("{}/postgres --version does not answer", bindir.display())))?;
        let parent = options.parent.clone().unwrap_or_else(std::env::temp_dir);
        sweep_stale(&parent);
        let ids = if is_root() {
            Some(os_user("postgres").ok_or_else(|| {
                Error::Cluster(
                    "running as root: the server must run as the `postgres` OS user, which does not exist \
                     (apt-get install -y postgresql creates it)"
                        .into(),
                )
            })?)
        } else {
            None
        };
        let io = |what: &str, e: std::io::Error| Error::Cluster(format!("throwaway cluster: {what}: {e}"));
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir_in(&parent)
            .map_err(|e| io("cannot create a temporary folder", e))?;
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("owner.pid"), std::process::id().to_string()).map_err(|e| io("cannot write owner.pid", e))?;
        let sock = root.join("sock");
        std::fs::create_dir(&sock).map_err(|e| io("cannot create the socket folder", e))?;
        if let Some((uid, gid)) = ids {
            for p in [&root, &sock] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).map_err(|e| io("cannot chown to postgres", e))?;
            }
        }
        let data = root.join("data");
        let mut initdb = Command::new(bindir.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "--username",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .current_dir(&root)
            .stdin(Stdio::null());
        if let Some((uid, gid)) = ids {
            initdb.uid(uid).gid(gid);
        }
        let out = initdb.output().map_err(|e| io("cannot run initdb", e))?;
        if !out.status.success() {
            return Err(Error::Cluster(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            )));
        }
        for (name, contents) in &options.files {
            let path = data.join(name);
            std::fs::write(&path, contents).map_err(|e| io("cannot write a file into the data folder", e))?;
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .map_err(|e| io("cannot restrict a file of the data folder", e))?;
            if let Some((uid, gid)) = ids {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(|e| io("cannot chown to postgres", e))?;
            }
        }
        if let Some(lines) = &options.hba {
            let hba = format!("local all all trust\n{lines}\n");
            std::fs::write(data.join("pg_hba.conf"), hba).map_err(|e| io("cannot write pg_hba.conf", e))?;
        }
        let cluster = TempCluster {
            root,
            port: free_port(),
            bindir,
            major,
            tcp: options.tcp,
            settings: options.settings.clone(),
            ids,
            dir: Mutex::new(Some(dir)),
            server: Mutex::new(None),
        };
        cluster.start_server()?;
        Ok(cluster)
    }

    /// Starts the postmaster on the cluster's data folder and port (first
    /// start, or again after [`Self::stop_server`]); returns once it accepts
    /// connections.
    fn start_server(&self) -> Result<()> {
        let io = |what: &str, e: std::io::Error| Error::Cluster(format!("throwaway cluster: {what}: {e}"));
        let (root, port, ids) = (&self.root, self.port, self.ids);
        let data = root.join("data");
        let sock = root.join("sock");
        let log_path = root.join("postgres.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| io("cannot open the server log", e))?;
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(&log_path, Some(uid), Some(gid)).map_err(|e| io("cannot chown the log", e))?;
        }
        let mut server = Command::new(self.bindir.join("postgres"));
        server.arg("-D").arg(&data).arg("-k").arg(&sock).arg("-p").arg(port.to_string());
        let listen = if self.tcp {
            "listen_addresses=127.0.0.1"
        } else {
            "listen_addresses="
        };
        for setting in [
            listen,
            "wal_level=logical",
            "max_connections=300",
            "max_wal_senders=20",
            "max_replication_slots=20",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            // With synchronous_commit off, WAL reaches disk every wal_writer_delay: a subscriber confirms
            // what it applied that much later (a scratch cluster has no disk to spare the writes).
            "wal_writer_delay=10ms",
            "unix_socket_permissions=0777",
        ] {
            server.arg("-c").arg(setting);
        }
        for setting in &self.settings {
            server.arg("-c").arg(setting);
        }
        let err_log = log.try_clone().map_err(|e| io("cannot open the server log", e))?;
        server
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .process_group(0);
        if let Some((uid, gid)) = ids {
            server.uid(uid).gid(gid);
        }
        // SAFETY: prctl is async-signal-safe; the closure runs in the child
        // after the uid switch (a credential change would clear the setting).
        unsafe {
            server.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (started_tx, started_rx) = mpsc::channel::<std::io::Result<u32>>();
        let (stop_tx, stop_rx) = mpsc::channel::<libc::c_int>();
        let keeper = std::thread::Builder::new()
            .name("strata-pg-keeper".into())
            .spawn(move || {
                let mut child = match server.spawn() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                };
                let _ = started_tx.send(Ok(child.id()));
                // A signal to stop with, or a dropped sender: immediate shutdown.
                let signal = stop_rx.recv().unwrap_or(libc::SIGQUIT);
                stop_child(&mut child, signal);
            })
            .map_err(|e| io("cannot start the keeper thread", e))?;
        let pid = match started_rx.recv() {
            Ok(Ok(pid)) => pid as i32,
            Ok(Err(e)) => return Err(io("cannot start postgres", e)),
            Err(_) => return Err(Error::Cluster("throwaway cluster: the keeper thread died".into())),
        };
        *self.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(Server { stop: stop_tx, keeper });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pidfile = std::fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
            let ours = pidfile.lines().next().is_some_and(|l| l.trim() == pid.to_string());
            if ours && pidfile.lines().nth(7).is_some_and(|l| l.trim() == "ready") && sock.join(format!(".s.PGSQL.{port}")).exists() {
                return Ok(());
            }
            if !process_alive(pid) || Instant::now() > deadline {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(Error::Cluster(format!("the throwaway PostgreSQL server did not start:\n{log}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server the way `pg_ctl stop -m fast` does (its sessions
    /// end, it checkpoints), keeping the data folder: clients see the server
    /// go away, as in an outage. [`Self::restart`] brings it back.
    pub fn stop_server(&self) {
        let server = self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(s) = server {
            let _ = s.stop.send(libc::SIGINT);
            let _ = s.keeper.join();
        }
    }

    /// Starts the server again after [`Self::stop_server`] (same data, port and socket).
    pub fn restart(&self) -> Result<()> {
        self.stop_server();
        self.start_server()
    }

    /// The server's log (startup errors, connection failures).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("postgres.log")).unwrap_or_default()
    }

    /// The folder of the socket (the `host` of connection strings).
    pub fn socket_dir(&self) -> PathBuf {
        self.root.join("sock")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PostgreSQL major version of the server.
    pub fn major(&self) -> u32 {
        self.major
    }

    /// A libpq key=value connection string to database `dbname`.
    pub fn conn_string(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user={SUPERUSER} dbname={dbname}",
            self.socket_dir().display(),
            self.port
        )
    }

    pub fn target(&self, dbname: &str) -> Target {
        Target::parse(&self.conn_string(dbname)).expect("a cluster's own connection string parses")
    }

    /// Stops the server (immediate shutdown) and removes the folder (idempotent).
    pub fn stop(&self) {
        let server = self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(s) = server {
            let _ = s.stop.send(libc::SIGQUIT);
            let _ = s.keeper.join();
        }
        let dir = self.dir.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(dir);
    }

    /// Keeps the cluster for the rest of the process (tests share one per
    /// binary in a static) and stops it from an `atexit` handler, because
    /// statics are never dropped.
    pub fn leak_until_exit(self) -> &'static TempCluster {
        static AT_EXIT: Mutex<Vec<&'static TempCluster>> = Mutex::new(Vec::new());
        static REGISTER: std::sync::Once = std::sync::Once::new();
        extern "C" fn stop_all() {
            let list = AT_EXIT.lock().map(|l| l.clone()).unwrap_or_default();
            for c in list {
                c.stop();
            }
        }
        let leaked: &'static TempCluster = Box::leak(Box::new(self));
        REGISTER.call_once(|| {
            // SAFETY: registering a plain extern "C" function.
            unsafe {
                libc::atexit(stop_all);
            }
        });
        if let Ok(mut l) = AT_EXIT.lock() {
            l.push(leaked);
        }
        leaked
    }
}

/// Sends `signal` (SIGQUIT: immediate shutdown, as `pg_ctl stop -m
/// immediate`; SIGINT: fast shutdown), then SIGKILL if the server is still
/// there after 10 s.
fn stop_child(child: &mut std::process::Child, signal: libc::c_int) {
    let pid = child.id() as i32;
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(pid, signal);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
