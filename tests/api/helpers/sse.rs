//! A reader of Server-Sent Events and the checks of a scan's event list.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<i64>,
    pub event: String,
    pub data: Value,
}

/// A minimal text/event-stream reader.
pub struct SseStream {
    pub status: reqwest::StatusCode,
    body: futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>,
    /// Bytes not yet split into events (a chunk may end inside a character).
    buffer: Vec<u8>,
}

impl SseStream {
    pub fn from_response(response: reqwest::Response) -> Self {
        Self {
            status: response.status(),
            body: response
                .bytes_stream()
                .map_err(std::io::Error::other)
                .boxed(),
            buffer: Vec::new(),
        }
    }

    /// The events in the body `reader` yields, read as it is asked for them.
    pub fn from_reader(
        status: reqwest::StatusCode,
        reader: impl tokio::io::AsyncRead + Send + Unpin + 'static,
    ) -> Self {
        use tokio::io::AsyncReadExt;
        let body = futures::stream::unfold(reader, |mut reader| async move {
            let mut chunk = vec![0; 8192];
            match reader.read(&mut chunk).await {
                Ok(0) => None,
                Ok(n) => {
                    chunk.truncate(n);
                    Some((Ok(bytes::Bytes::from(chunk)), reader))
                }
                Err(e) => Some((Err(e), reader)),
            }
        });
        Self {
            status,
            body: body.boxed(),
            buffer: Vec::new(),
        }
    }

    /// The next event, or `None` when the server closed the stream. Waits at
    /// most 60 s, so a broken test fails instead of hanging.
    pub async fn next(&mut self) -> Option<SseEvent> {
        tokio::time::timeout(Duration::from_secs(60), self.next_inner())
            .await
            .expect("no event within 60 s")
    }

    async fn next_inner(&mut self) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let block = String::from_utf8(block).expect("an event that is not UTF-8");
                let mut event = SseEvent {
                    id: None,
                    event: "message".into(),
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment or a bare retry
                }
                event.data = serde_json::from_str(&data).unwrap();
                return Some(event);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Every event up to and including `done`; asserts the stream then ends.
    pub async fn until_done(mut self) -> Vec<SseEvent> {
        assert_eq!(self.status, 200, "the stream was refused");
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            let done = event.event == "done";
            events.push(event);
            if done {
                assert!(self.next().await.is_none(), "the stream went on after done");
                return events;
            }
        }
        panic!("the stream ended without done: {events:?}");
    }
}

/// Every log line an event list carries: the snapshot's `logs`, then `log` events.
pub fn log_lines(events: &[SseEvent]) -> Vec<(i64, String)> {
    let mut lines = Vec::new();
    for event in events {
        match event.event.as_str() {
            "snapshot" => {
                for log in event.data["logs"].as_array().unwrap() {
                    lines.push((
                        log["id"].as_i64().unwrap(),
                        log["message"].as_str().unwrap().to_owned(),
                    ));
                }
            }
            "log" => lines.push((
                event.data["id"].as_i64().unwrap(),
                event.data["message"].as_str().unwrap().to_owned(),
            )),
            _ => {}
        }
    }
    lines
}

/// Ids strictly increase, progress never goes down, one `done` at the end.
pub fn assert_well_formed(events: &[SseEvent]) {
    assert_eq!(events[0].event, "snapshot");
    let ids: Vec<i64> = events
        .iter()
        .map(|e| e.id.expect("every event has an id"))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids must strictly increase: {ids:?}"
    );
    let progress: Vec<i64> = events
        .iter()
        .filter_map(|e| e.data["progress"].as_i64())
        .collect();
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress went down: {progress:?}"
    );
    assert_eq!(events.iter().filter(|e| e.event == "done").count(), 1);
    assert_eq!(events.last().unwrap().event, "done");
}
