//! What the connection does with each frame the server sends (RFC 9113
//! §6): answers' headers, DATA and resets go to their streams; SETTINGS,
//! PING, WINDOW_UPDATE and GOAWAY to the connection. A frame that breaks
//! the protocol ends the connection with a GOAWAY naming the error, and
//! every call on it fails with INTERNAL, as tonic's client reports it.

use bytes::{Buf, BytesMut};
use tonic::Status;

use super::frame::{self, flag, kind, reason, setting, Head, HEADER_LEN};
use super::hpack::MAX_HEADER_LIST_BYTES;
use super::link::{Continuation, End, State, HANDSHAKE_PING};
use super::status::from_reason;

/// A connection error: the code sent in the GOAWAY and what went wrong.
pub struct ConnError(pub u32, pub String);

type Handled = Result<(), ConnError>;

fn protocol(what: impl Into<String>) -> ConnError {
    ConnError(reason::PROTOCOL_ERROR, what.into())
}

impl State {
    /// Handles every whole frame at the front of `input` (consumed), ending
    /// the connection on a protocol error.
    pub fn on_bytes(&mut self, input: &mut BytesMut) {
        while self.closed.is_none() && input.len() >= HEADER_LEN {
            let head = Head::parse(input);
            if head.len > frame::DEFAULT_MAX_FRAME {
                let what = format!(
                    "a frame of {} bytes (the limit is {})",
                    head.len,
                    frame::DEFAULT_MAX_FRAME
                );
                self.connection_error(ConnError(reason::FRAME_SIZE_ERROR, what));
                break;
            }
            if input.len() < HEADER_LEN + head.len {
                break;
            }
            let handled = self.on_frame(&head, &input[HEADER_LEN..HEADER_LEN + head.len]);
            input.advance(HEADER_LEN + head.len);
            if let Err(e) = handled {
                self.connection_error(e);
            }
        }
        self.schedule_flush();
    }

    fn connection_error(&mut self, ConnError(code, what): ConnError) {
        frame::put_goaway(&mut self.out, code);
        self.fail(Status::internal(format!(
            "h2 protocol error: {what} ({})",
            frame::reason_name(code)
        )));
    }

    fn on_frame(&mut self, head: &Head, payload: &[u8]) -> Handled {
        if !self.settings_seen && head.kind != kind::SETTINGS {
            return Err(protocol("the server's first frame is not SETTINGS"));
        }
        if self.continuation.is_some() && head.kind != kind::CONTINUATION {
            return Err(protocol("a header block interrupted"));
        }
        match head.kind {
            kind::DATA => self.on_data(head, payload),
            kind::HEADERS => self.on_headers(head, payload),
            kind::CONTINUATION => self.on_continuation(head, payload),
            kind::RST_STREAM => self.on_reset(head, payload),
            kind::SETTINGS => self.on_settings(head, payload),
            kind::PING => self.on_ping(head, payload),
            kind::GOAWAY => self.on_goaway(head, payload),
            kind::WINDOW_UPDATE => self.on_window_update(head, payload),
            kind::PUSH_PROMISE => Err(protocol("PUSH_PROMISE, though push is disabled")),
            // PRIORITY and unknown frame types are ignored (RFC 9113 §4.1, §5.3.2).
            _ => Ok(()),
        }
    }

    /// A stream id the server may speak of: one this client opened.
    fn known(&self, head: &Head) -> Handled {
        if head.stream == 0 || head.stream.is_multiple_of(2) || head.stream >= self.next_id {
            return Err(protocol(format!(
                "a frame on stream {} never opened",
                head.stream
            )));
        }
        Ok(())
    }

    fn on_data(&mut self, head: &Head, payload: &[u8]) -> Handled {
        self.known(head)?;
        let (start, end) = frame::unpad(head, payload, 0).ok_or_else(|| protocol("bad DATA padding"))?;
        self.consumed(head.stream, head.len);
        let Some(slot) = self.streams.get_mut(&head.stream) else {
            return Ok(()); // released by its caller: dropped
        };
        if slot.head.is_none() || slot.end.is_some() {
            // DATA before the headers or after the end: a malformed answer.
            frame::put_rst_stream(&mut self.out, head.stream, reason::PROTOCOL_ERROR);
            let status = Status::internal("h2 protocol error: DATA outside an answer's body");
            self.end_stream(head.stream, End::Failed(status));
            return Ok(());
        }
        slot.data.extend_from_slice(&payload[start..end]);
        if head.has(flag::END_STREAM) {
            self.end_stream(head.stream, End::Stream);
        } else {
            self.touch(head.stream);
        }
        Ok(())
    }

    fn on_headers(&mut self, head: &Head, payload: &[u8]) -> Handled {
        self.known(head)?;
        let skip = if head.has(flag::PRIORITY) { 5 } else { 0 };
        let (start, end) =
            frame::unpad(head, payload, skip).ok_or_else(|| protocol("bad HEADERS padding"))?;
        let mut block = BytesMut::from(&payload[start..end]);
        if head.has(flag::END_HEADERS) {
            return self.on_header_block(head.stream, head.has(flag::END_STREAM), &block);
        }
        block.reserve(frame::DEFAULT_MAX_FRAME);
        self.continuation = Some(Continuation {
            stream: head.stream,
            end_stream: head.has(flag::END_STREAM),
            block,
        });
        Ok(())
    }

    fn on_continuation(&mut self, head: &Head, payload: &[u8]) -> Handled {
        let Some(mut c) = self.continuation.take() else {
            return Err(protocol("CONTINUATION without a header block"));
        };
        if c.stream != head.stream {
            return Err(protocol("CONTINUATION on another stream"));
        }
        if c.block.len() + payload.len() > MAX_HEADER_LIST_BYTES {
            return Err(protocol(format!(
                "a header block over {MAX_HEADER_LIST_BYTES} bytes"
            )));
        }
        c.block.extend_from_slice(payload);
        if head.has(flag::END_HEADERS) {
            return self.on_header_block(c.stream, c.end_stream, &c.block);
        }
        self.continuation = Some(c);
        Ok(())
    }

    /// A whole header block: the answer's headers, or its trailers.
    fn on_header_block(&mut self, id: u32, end_stream: bool, block: &[u8]) -> Handled {
        // Decoded even for a released stream: the HPACK table must follow.
        let fields = self
            .decoder
            .decode(block)
            .map_err(|e| ConnError(reason::COMPRESSION_ERROR, e))?;
        let Some(slot) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if slot.end.is_some() {
            return Ok(());
        }
        let informational = fields.http.is_some_and(|s| (100..200).contains(&s));
        if slot.head.is_none() {
            if !informational {
                slot.head = Some(fields);
            }
        } else if end_stream {
            slot.trailers = Some(fields);
        } else {
            frame::put_rst_stream(&mut self.out, id, reason::PROTOCOL_ERROR);
            let status = Status::internal("h2 protocol error: trailers without END_STREAM");
            self.end_stream(id, End::Failed(status));
            return Ok(());
        }
        if end_stream {
            self.end_stream(id, End::Stream);
        } else {
            self.touch(id);
        }
        Ok(())
    }

    fn on_reset(&mut self, head: &Head, payload: &[u8]) -> Handled {
        self.known(head)?;
        let code = <[u8; 4]>::try_from(payload)
            .map_err(|_| ConnError(reason::FRAME_SIZE_ERROR, "RST_STREAM size".into()))?;
        self.end_stream(head.stream, End::Reset(u32::from_be_bytes(code)));
        Ok(())
    }

    fn on_settings(&mut self, head: &Head, payload: &[u8]) -> Handled {
        if head.stream != 0 {
            return Err(protocol("SETTINGS on a stream"));
        }
        if head.has(flag::ACK) {
            return Ok(());
        }
        if !payload.len().is_multiple_of(6) {
            return Err(ConnError(reason::FRAME_SIZE_ERROR, "SETTINGS size".into()));
        }
        for pair in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([pair[0], pair[1]]);
            let value = u32::from_be_bytes([pair[2], pair[3], pair[4], pair[5]]);
            self.apply_setting(id, value)?;
        }
        self.settings_seen = true;
        frame::put_settings_ack(&mut self.out);
        self.flush_blocked();
        self.wake_whole_line();
        if self.pong {
            self.wake.extend(self.handshake_waker.take());
        }
        Ok(())
    }

    fn apply_setting(&mut self, id: u16, value: u32) -> Handled {
        match id {
            setting::HEADER_TABLE_SIZE => self.encoder.peer_table_size(value as usize),
            setting::MAX_CONCURRENT_STREAMS => self.max_concurrent = value as usize,
            setting::INITIAL_WINDOW_SIZE => {
                if i64::from(value) > frame::MAX_WINDOW {
                    return Err(ConnError(
                        reason::FLOW_CONTROL_ERROR,
                        "INITIAL_WINDOW_SIZE too large".into(),
                    ));
                }
                let delta = i64::from(value) - self.peer_initial_window;
                self.peer_initial_window = i64::from(value);
                for slot in self.streams.values_mut() {
                    slot.add_send_window(delta);
                }
            }
            setting::MAX_FRAME_SIZE => {
                let size = value as usize;
                if !(frame::DEFAULT_MAX_FRAME..=frame::MAX_FRAME_LIMIT).contains(&size) {
                    return Err(protocol(format!("MAX_FRAME_SIZE {size}")));
                }
                self.peer_max_frame = size;
            }
            setting::ENABLE_PUSH if value > 1 => return Err(protocol("ENABLE_PUSH above 1")),
            _ => {}
        }
        Ok(())
    }

    fn on_ping(&mut self, head: &Head, payload: &[u8]) -> Handled {
        let data = <[u8; 8]>::try_from(payload)
            .map_err(|_| ConnError(reason::FRAME_SIZE_ERROR, "PING size".into()))?;
        if head.stream != 0 {
            return Err(protocol("PING on a stream"));
        }
        if !head.has(flag::ACK) {
            frame::put_ping(&mut self.out, true, data);
        } else if data == HANDSHAKE_PING {
            self.pong = true;
            self.wake.extend(self.handshake_waker.take());
        }
        Ok(())
    }

    /// GOAWAY: no new streams; the ones above its last id were not
    /// processed and fail now (the rest may still be answered).
    fn on_goaway(&mut self, head: &Head, payload: &[u8]) -> Handled {
        if head.stream != 0 || payload.len() < 8 {
            return Err(protocol("malformed GOAWAY"));
        }
        let last =
            u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & frame::MAX_STREAM_ID;
        let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
        crate::connections::goaway_received();
        self.drain();
        let doomed: Vec<u32> = self.streams.keys().copied().filter(|&id| id > last).collect();
        for id in doomed {
            let status = from_reason(
                code,
                "the server went away (GOAWAY) before this stream was processed",
            );
            self.end_stream(id, End::Failed(status));
        }
        self.wake_whole_line();
        self.finish_if_drained();
        Ok(())
    }

    fn on_window_update(&mut self, head: &Head, payload: &[u8]) -> Handled {
        let raw = <[u8; 4]>::try_from(payload)
            .map_err(|_| ConnError(reason::FRAME_SIZE_ERROR, "WINDOW_UPDATE size".into()))?;
        let increment = i64::from(u32::from_be_bytes(raw) & frame::MAX_STREAM_ID);
        if head.stream == 0 {
            if increment == 0 {
                return Err(protocol("a zero WINDOW_UPDATE"));
            }
            self.send_window += increment;
            if self.send_window > frame::MAX_WINDOW {
                return Err(ConnError(
                    reason::FLOW_CONTROL_ERROR,
                    "connection window overflow".into(),
                ));
            }
            self.flush_blocked();
            return Ok(());
        }
        self.known(head)?;
        if let Some(slot) = self.streams.get_mut(&head.stream) {
            slot.add_send_window(increment);
            self.flush_stream(head.stream);
            self.schedule_flush();
        }
        Ok(())
    }
}
