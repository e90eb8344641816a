//! Downloads of the official dataset files over HTTP(S) with a progress bar: the
//! [`Fetcher`] the tools plug into the pipeline (wildcards-core has no HTTP client).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use wildcards_core::datasets::download::{Body, Fetcher};

/// ureq with connect/read timeouts, and a progress bar on stderr when it is a terminal and
/// the caller wants one.
pub struct HttpFetcher {
    agent: ureq::Agent,
    show_progress: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl HttpFetcher {
    /// `show_progress`: draw a bar (only ever on a terminal; never for workers or `--quiet`).
    pub fn new(show_progress: bool) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .build()
            .into();
        let show_progress = show_progress && std::io::stderr().is_terminal();
        Self { agent, show_progress, bar: Mutex::new(None) }
    }

    fn new_bar(&self, file: &str, total: Option<u64>) -> ProgressBar {
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        bar.set_draw_target(if self.show_progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!("downloading {file}"));
        bar
    }
}

impl Fetcher for HttpFetcher {
    fn open(&self, url: &str) -> Result<Body> {
        let response = self.agent.get(url).call().with_context(|| format!("GET {url}"))?;
        let len = response.body().content_length();
        let reader = response.into_body().into_reader();
        Ok(Body { len, reader: Box::new(reader) })
    }

    fn progress(&self, file: &str, done: u64, total: Option<u64>) {
        let mut bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        bar.get_or_insert_with(|| self.new_bar(file, total)).set_position(done);
    }

    fn finished(&self, _file: &str) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use wildcards_core::datasets::download::{ensure, DataFile};

    /// A one-shot HTTP/1.1 server on 127.0.0.1 answering every request with `body` (or a 404
    /// when `body` is None). Returns the base URL.
    fn serve(body: Option<Vec<u8>>, requests: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let mut stream = stream.unwrap();
                let mut req = [0u8; 4096];
                let _ = stream.read(&mut req);
                let head = match &body {
                    Some(b) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        b.len()
                    ),
                    None => {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_string()
                    }
                };
                stream.write_all(head.as_bytes()).unwrap();
                if let Some(b) = &body {
                    stream.write_all(b).unwrap();
                }
            }
        });
        format!("http://{addr}")
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    #[test]
    fn downloads_a_missing_file_over_http() {
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let url = leak(format!("{}/data.txt", serve(Some(payload.clone()), 1)));
        let dir = tempfile::tempdir().unwrap();
        let file = DataFile { folder: "demo", name: "data.txt", url, published: None };
        let path =
            ensure(dir.path(), &file, Some(&HttpFetcher::new(false)), &mut Vec::new()).unwrap();
        assert_eq!(path, dir.path().join("demo/data.txt"));
        assert_eq!(std::fs::read(&path).unwrap(), payload);
        assert_eq!(std::fs::read_dir(dir.path().join("demo")).unwrap().count(), 1);
    }

    #[test]
    fn a_404_names_the_path_and_leaves_nothing() {
        let url = leak(format!("{}/missing.txt", serve(None, 1)));
        let dir = tempfile::tempdir().unwrap();
        let file = DataFile { folder: "demo", name: "missing.txt", url, published: None };
        let err =
            ensure(dir.path(), &file, Some(&HttpFetcher::new(false)), &mut Vec::new()).unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("missing.txt is missing"), "{err}");
        assert!(err.contains("--data-dir"), "{err}");
        assert!(!dir.path().join("demo").exists(), "no empty data folder is left behind");
    }
}
