//! The server(s) under test: external `--target`s, or a bank server embedded in
//! this process on 127.0.0.1:0 with its own runtime and threads, so the load
//! generator and the server do not share a scheduler.

use std::thread::JoinHandle;
use std::time::Duration;

use bank_server::backend::ledger::InjectedBug;
use bank_server::ServerConfig;
use tokio::sync::oneshot;

/// The servers to drive (one, or several on one ledger), and how to stop
/// the embedded one if we started it.
pub struct Target {
    pub endpoints: Vec<String>,
    embedded: Option<Embedded>,
}

struct Embedded {
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

/// Threads of the embedded server's runtime.
const EMBEDDED_WORKER_THREADS: usize = 2;

impl Target {
    /// External servers at `endpoints` (at least one).
    pub fn external(endpoints: Vec<String>) -> Self {
        Target {
            endpoints,
            embedded: None,
        }
    }

    /// Starts a bank server in-process with `delay` and `unsafe_no_lock`,
    /// with room for at least `accounts` accounts.
    /// `inject_bug` plants a bug of the zoo (`InjectedBug::None`: no bug).
    pub fn embedded(
        delay: Duration,
        unsafe_no_lock: bool,
        accounts: usize,
        inject_bug: InjectedBug,
    ) -> std::io::Result<Self> {
        let mut config = ServerConfig::default();
        config.ledger.max_accounts = config.ledger.max_accounts.max(accounts);
        config.ledger.processing_delay = delay;
        config.ledger.unsafe_no_lock = unsafe_no_lock;
        config.ledger.inject_bug = inject_bug;
        config.shutdown_grace = Duration::from_secs(1);
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(EMBEDDED_WORKER_THREADS)
            .thread_name("embedded-bank")
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("embedded-bank".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => return tracing::error!("embedded server: {e}"),
                    };
                    let shutdown = async {
                        let _ = stopped.await;
                    };
                    if let Err(e) = bank_server::run(listener, config, shutdown).await {
                        tracing::error!("embedded server failed: {e}");
                    }
                });
            })?;
        Ok(Target {
            endpoints: vec![format!("http://{addr}")],
            embedded: Some(Embedded { stop, thread }),
        })
    }

    /// True when the server runs in this process.
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Stops an embedded server and waits for it; nothing for an external one.
    pub fn stop(self) {
        if let Some(embedded) = self.embedded {
            let _ = embedded.stop.send(());
            let _ = embedded.thread.join();
        }
    }
}
