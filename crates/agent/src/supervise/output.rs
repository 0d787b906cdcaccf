//! Reading a process's output: standard output and standard error, line by line, into
//! chunks of text and metric points for the relay.

use super::*;

/// One line (or piece of a line) of output.
pub(super) struct Chunk {
    pub(super) stream: Stream,
    pub(super) text: String,
    /// Bytes of an over-long line that were dropped.
    pub(super) dropped: usize,
    pub(super) metric: Option<Result<MetricPoint, String>>,
    pub(super) time_ms: i64,
}

/// Read `out` segment by segment into `tx` until end of file.
pub(super) async fn read_stream<R: AsyncRead + Unpin>(
    out: R,
    stream: Stream,
    tx: mpsc::UnboundedSender<Chunk>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, out);
    let mut buf = Vec::new();
    loop {
        match read_segment(&mut reader, &mut buf, MAX_LINE).await {
            Ok(Some(dropped)) => {
                let text = String::from_utf8_lossy(&buf).into_owned();
                let metric = if stream != Stream::Stdout {
                    None
                } else if dropped == 0 {
                    parse_metric_line(&text)
                } else if text.starts_with(PREFIX) {
                    Some(Err("the line is longer than 1 MiB".to_string()))
                } else {
                    None
                };
                let chunk = Chunk {
                    stream,
                    text,
                    dropped,
                    metric,
                    time_ms: crate::now_ms(),
                };
                if tx.send(chunk).is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                tracing::debug!("reading {stream}: {err}");
                break;
            }
        }
    }
}

/// Read up to and including the next `\n` or `\r` into `out` (replacing its content), keeping
/// at most `cap` bytes and discarding the rest of a longer segment. Returns the number of
/// discarded bytes, or `None` at end of file with nothing read.
pub(super) async fn read_segment<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    out: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<usize>> {
    out.clear();
    let mut dropped = 0usize;
    let mut any = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(any.then_some(dropped));
        }
        any = true;
        let (take, done) = match available.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let keep = take.min(cap.saturating_sub(out.len()));
        out.extend_from_slice(&available[..keep]);
        dropped += take - keep;
        reader.consume(take);
        if done {
            return Ok(Some(dropped));
        }
    }
}
