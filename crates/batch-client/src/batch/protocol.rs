//! The messages between batch-client and its workers: one JSON object per line, jobs on the
//! worker's stdin, events on its stdout. Anything else a worker prints goes to stderr.

use std::io::{BufRead, Write};

use crate::job::{JobOutcome, JobSpec};
use serde::{Deserialize, Serialize};

/// batch-client -> worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub job: JobSpec,
}

/// worker -> batch-client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The worker is up and waiting for jobs.
    Ready { pid: u32 },
    /// Job `job` entered a stage (loading, pruning, ...).
    Stage { job: usize, stage: String },
    /// Job `job` is done (succeeded or failed). With `retire` the worker exits next (after a
    /// panic its state is not trusted); otherwise it takes the next job.
    Finished { job: usize, outcome: JobOutcome, retire: bool, peak_rss_kb: Option<u64> },
    /// A line for the batch's log (e.g. an embed-server of a list failed and the worker
    /// failed over to the others).
    Note { message: String },
}

/// Writes one message as a JSON line and flushes it.
pub fn send<T: Serialize>(out: &mut impl Write, msg: &T) -> std::io::Result<()> {
    let line = serde_json::to_string(msg).map_err(std::io::Error::other)?;
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Reads the next message; `Ok(None)` at end of input. A line that is not a message is an
/// error carrying the line.
pub fn receive<T: for<'de> Deserialize<'de>>(
    input: &mut impl BufRead,
) -> std::io::Result<Option<T>> {
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    serde_json::from_str(line.trim_end())
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{e}: {line}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobOutcome;

    #[test]
    fn events_round_trip_as_json_lines_and_noise_is_reported() {
        let mut buf = Vec::new();
        let ev = Event::Finished {
            job: 3,
            outcome: JobOutcome::failed("no data", 0.5),
            retire: false,
            peak_rss_kb: Some(4096),
        };
        send(&mut buf, &Event::Stage { job: 3, stage: "pruning".into() }).unwrap();
        send(&mut buf, &ev).unwrap();
        buf.extend_from_slice(b"\nnot json\n");
        let mut input = std::io::Cursor::new(buf);
        let first: Event = receive(&mut input).unwrap().unwrap();
        assert!(matches!(first, Event::Stage { job: 3, ref stage } if stage == "pruning"));
        match receive::<Event>(&mut input).unwrap().unwrap() {
            Event::Finished { job, outcome, peak_rss_kb, .. } => {
                assert_eq!((job, peak_rss_kb), (3, Some(4096)));
                assert_eq!(outcome.error.as_deref(), Some("no data"));
            }
            other => panic!("{other:?}"),
        }
        let err = receive::<Event>(&mut input).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(receive::<Event>(&mut input).unwrap().is_none());
    }
}
