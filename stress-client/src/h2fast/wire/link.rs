//! One HTTP/2 client connection's shared state and what callers do with
//! it: open a stream (its header block and first DATA written straight into
//! the connection's output buffer), send more DATA under flow control, wait
//! for what a stream received, and let go of a stream (resetting it when it
//! is not finished). A single task per connection ([`super::driver`]) moves
//! the bytes; callers never touch the socket, so the requests of every call
//! made in one turn of the runtime leave in one write.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use tonic::Status;

use super::call::FastCall;
use super::frame::{self, flag, kind, reason, setting};
use super::hpack::{Decoder, Encoder, Fields, MAX_HEADER_LIST_BYTES};

/// Receive window of each stream: answers never wait for a window update.
pub const STREAM_WINDOW: u32 = 1 << 20;
/// Receive window of the whole connection.
pub const CONNECTION_WINDOW: u32 = 16 << 20;

/// How a stream ended, as far as it did.
#[derive(Debug, Clone)]
pub enum End {
    /// The server ended its side (END_STREAM).
    Stream,
    /// The server reset the stream with this error code.
    Reset(u32),
    /// The stream failed without a word from the server (the connection
    /// broke or spoke nonsense, or a GOAWAY left the stream unprocessed).
    Failed(Status),
}

/// One open stream: what arrived, and what waits to be sent.
#[derive(Debug, Default)]
pub struct Slot {
    /// The response headers (a trailers-only answer has only these).
    pub head: Option<Fields>,
    pub trailers: Option<Fields>,
    /// DATA received and not yet taken.
    pub data: BytesMut,
    pub end: Option<End>,
    waker: Option<Waker>,
    send_window: i64,
    pending: VecDeque<(Bytes, bool)>,
    /// END_STREAM has been written.
    local_done: bool,
    /// Counted out of the open streams (both sides done or reset).
    closed: bool,
    recv_unacked: usize,
}

impl Slot {
    /// A WINDOW_UPDATE or a new initial window (may go negative, RFC 9113 §6.9.2).
    pub fn add_send_window(&mut self, delta: i64) {
        self.send_window = self.send_window.saturating_add(delta);
    }
}

/// A header block arriving in CONTINUATION frames.
#[derive(Debug)]
pub struct Continuation {
    pub stream: u32,
    pub end_stream: bool,
    pub block: BytesMut,
}

/// Why a stream could not be opened on this connection.
#[derive(Debug)]
pub enum Refused {
    /// The server's limit of concurrent streams is reached: wait.
    Full,
    /// The connection takes no new streams (closed, going away, ids used
    /// up): make a new one.
    Unusable(Status),
}

/// Hashes a stream id: ids are sequential odd numbers this client picks
/// (a server can look ids up, never add them), so a multiply spreads them
/// well enough and costs a fraction of SipHash.
#[derive(Default, Clone, Copy)]
pub struct IdHash(u64);

impl Hasher for IdHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The open streams by id.
pub type Streams = HashMap<u32, Slot, BuildHasherDefault<IdHash>>;

/// The connection's state, behind one lock.
pub struct State {
    /// Frames waiting for the driver to write them.
    pub out: BytesMut,
    pub flush_waker: Option<Waker>,
    pub flush_scheduled: bool,
    pub streams: Streams,
    pub next_id: u32,
    pub active: usize,
    pub max_concurrent: usize,
    /// Callers waiting for a free stream, first come first served, by ticket.
    pub open_waiters: VecDeque<(u64, Waker)>,
    pub next_ticket: u64,
    pub send_window: i64,
    pub peer_initial_window: i64,
    pub peer_max_frame: usize,
    /// Streams with DATA waiting for window, in the order they blocked.
    pub blocked: VecDeque<u32>,
    pub recv_unacked: usize,
    pub encoder: Encoder,
    pub decoder: Decoder,
    pub continuation: Option<Continuation>,
    /// No new streams (a GOAWAY, ids used up, or the client is done).
    pub draining: bool,
    /// Why the connection is over; set once.
    pub closed: Option<Status>,
    pub settings_seen: bool,
    pub pong: bool,
    pub handshake_waker: Option<Waker>,
    /// The connection's reconnect task, woken once this connection takes
    /// no new streams (see [`Link::poll_unusable`]).
    pub unusable_waker: Option<Waker>,
    /// Wakers to call once the lock is released.
    pub wake: Vec<Waker>,
    scratch: BytesMut,
}

/// A connection shared by its callers and its driver.
pub struct Link {
    state: Mutex<State>,
}

/// The payload of the PING that proves the server speaks HTTP/2.
pub const HANDSHAKE_PING: [u8; 8] = *b"bankping";

impl Link {
    /// A connection about to start: the preface, SETTINGS, the connection
    /// window and a PING are queued.
    pub fn new(encoder: Encoder) -> Arc<Link> {
        let mut out = BytesMut::with_capacity(16 << 10);
        out.extend_from_slice(frame::PREFACE);
        frame::put_settings(
            &mut out,
            &[
                (setting::ENABLE_PUSH, 0),
                (setting::INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                (0x6, MAX_HEADER_LIST_BYTES as u32),
            ],
        );
        frame::put_window_update(&mut out, 0, CONNECTION_WINDOW - frame::DEFAULT_WINDOW as u32);
        frame::put_ping(&mut out, false, HANDSHAKE_PING);
        let state = State {
            out,
            flush_waker: None,
            flush_scheduled: false,
            streams: Streams::default(),
            next_id: 1,
            active: 0,
            max_concurrent: usize::MAX,
            open_waiters: VecDeque::new(),
            next_ticket: 0,
            send_window: frame::DEFAULT_WINDOW,
            peer_initial_window: frame::DEFAULT_WINDOW,
            peer_max_frame: frame::DEFAULT_MAX_FRAME,
            blocked: VecDeque::new(),
            recv_unacked: 0,
            encoder,
            decoder: Decoder::default(),
            continuation: None,
            draining: false,
            closed: None,
            settings_seen: false,
            pong: false,
            handshake_waker: None,
            unusable_waker: None,
            wake: Vec::new(),
            scratch: BytesMut::new(),
        };
        Arc::new(Link {
            state: Mutex::new(state),
        })
    }

    /// The state, locked. A poisoned lock (a panic while holding it) is
    /// taken as is: every update leaves the state consistent between calls.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ready once the server answered the handshake PING (it speaks
    /// HTTP/2); the reason when the connection ended first.
    pub fn poll_handshake(&self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        let mut st = self.lock();
        // A handshake that was answered succeeded, even if the connection
        // has ended since: its reconnect task tells a connection that
        // carried no call from a failed attempt.
        if st.pong && st.settings_seen {
            return Poll::Ready(Ok(()));
        }
        if let Some(why) = &st.closed {
            return Poll::Ready(Err(why.message().to_owned()));
        }
        st.handshake_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Ready once the connection takes no new streams (a GOAWAY, ids used
    /// up, closed, shut down): then it is time for a new one.
    pub fn poll_unusable(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.lock();
        if st.draining || st.closed.is_some() {
            return Poll::Ready(());
        }
        if !st
            .unusable_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            st.unusable_waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Whether any stream was opened here: a connection that ends before
    /// carrying one counts as a failed attempt (see [`crate::h2fast::reconnect`]).
    pub fn carried_streams(&self) -> bool {
        self.lock().next_id > 1
    }

    /// Opens a stream of `rpc`, its first DATA (`body`) and, with `end`,
    /// the end of its request side, waiting in line (`ticket`, see
    /// [`Waiting`]) while the server's stream limit is reached.
    fn poll_open(
        &self,
        cx: &mut Context<'_>,
        ticket: &mut Option<u64>,
        rpc: FastCall,
        body: Option<&[u8]>,
        end: bool,
    ) -> Poll<Result<u32, Status>> {
        let mut st = self.lock();
        let opened = st.open(rpc, body, end);
        let polled = match opened {
            Ok(id) => {
                st.leave_line(ticket.take());
                Poll::Ready(Ok(id))
            }
            Err(Refused::Unusable(status)) => {
                st.leave_line(ticket.take());
                Poll::Ready(Err(status))
            }
            Err(Refused::Full) => {
                st.wait_in_line(ticket, cx.waker());
                Poll::Pending
            }
        };
        st.wake_all();
        polled
    }

    /// Opens a stream without waiting (see [`Link::poll_open`]).
    pub fn try_open(&self, rpc: FastCall, body: Option<&[u8]>, end: bool) -> Result<u32, Refused> {
        let mut st = self.lock();
        let opened = st.open(rpc, body, end);
        st.wake_all();
        opened
    }

    /// Sends more DATA on stream `id` (nothing once its request side ended
    /// or it is gone: its answer side says why).
    pub fn send(&self, id: u32, data: Bytes, end: bool) {
        let mut st = self.lock();
        if st.closed.is_some() {
            return;
        }
        match st.streams.get_mut(&id) {
            Some(slot) if !slot.local_done && slot.end.is_none() => {
                slot.pending.push_back((data, end));
                st.flush_stream(id);
                st.schedule_flush();
                st.wake_all();
            }
            _ => {}
        }
    }

    /// Ready with what `take` makes of stream `id` once it returns
    /// something; until then the caller is woken on each change.
    pub fn poll_stream<R>(
        &self,
        id: u32,
        cx: &mut Context<'_>,
        take: impl FnOnce(&mut Slot) -> Option<R>,
    ) -> Poll<R> {
        let mut st = self.lock();
        let Some(slot) = st.streams.get_mut(&id) else {
            // Released streams are not polled; a slot is removed only by release.
            let status = Status::internal("a fast-path stream was polled after its release");
            let mut gone = Slot {
                end: Some(End::Failed(status)),
                ..Slot::default()
            };
            return Poll::Ready(take(&mut gone).expect("an ended slot yields"));
        };
        if let Some(r) = take(slot) {
            return Poll::Ready(r);
        }
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The caller is done with stream `id`: forgotten, and reset if it
    /// is not finished.
    pub fn release(&self, id: u32) {
        let mut st = self.lock();
        let Some(slot) = st.streams.remove(&id) else {
            return;
        };
        if !slot.closed {
            if st.closed.is_none() {
                frame::put_rst_stream(&mut st.out, id, reason::CANCEL);
                st.schedule_flush();
            }
            st.stream_closed();
        }
        st.finish_if_drained();
        st.wake_all();
    }

    /// No new streams; the connection ends once its streams are done.
    pub fn shutdown(&self) {
        let mut st = self.lock();
        st.drain();
        st.finish_if_drained();
        st.wake_all();
    }

    /// Ends the connection with `status` for every stream still waiting.
    pub fn fail(&self, status: Status) {
        let mut st = self.lock();
        st.fail(status);
        st.wake_all();
    }
}

impl State {
    fn open(&mut self, rpc: FastCall, body: Option<&[u8]>, end: bool) -> Result<u32, Refused> {
        if let Some(why) = &self.closed {
            return Err(Refused::Unusable(why.clone()));
        }
        if self.draining || self.next_id > frame::MAX_STREAM_ID {
            self.drain();
            return Err(Refused::Unusable(Status::unavailable(
                "connection error: the connection takes no new streams",
            )));
        }
        if self.active >= self.max_concurrent {
            return Err(Refused::Full);
        }
        let id = self.next_id;
        self.next_id += 2;
        self.active += 1;
        self.write_headers(id, rpc, end && body.is_none());
        let slot = Slot {
            send_window: self.peer_initial_window,
            local_done: end && body.is_none(),
            ..Slot::default()
        };
        self.streams.insert(id, slot);
        if let Some(body) = body {
            self.queue_data(id, Bytes::copy_from_slice(body), end);
        }
        self.schedule_flush();
        Ok(id)
    }

    /// HEADERS (and CONTINUATIONs if the block is larger than a frame).
    fn write_headers(&mut self, id: u32, rpc: FastCall, end_stream: bool) {
        let mut block = std::mem::take(&mut self.scratch);
        block.clear();
        self.encoder.encode(rpc, &mut block);
        let max = self.peer_max_frame;
        let mut first = true;
        let mut rest = &block[..];
        loop {
            let n = rest.len().min(max);
            let last = n == rest.len();
            let mut flags = if last { flag::END_HEADERS } else { 0 };
            let kind = if first { kind::HEADERS } else { kind::CONTINUATION };
            if first && end_stream {
                flags |= flag::END_STREAM;
            }
            frame::put_head(&mut self.out, n, kind, flags, id);
            self.out.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            first = false;
            if last {
                break;
            }
        }
        self.scratch = block;
    }

    fn queue_data(&mut self, id: u32, data: Bytes, end: bool) {
        if let Some(slot) = self.streams.get_mut(&id) {
            slot.pending.push_back((data, end));
            self.flush_stream(id);
        }
    }

    /// Writes as much of stream `id`'s pending DATA as the windows allow;
    /// what is left waits for a WINDOW_UPDATE.
    pub fn flush_stream(&mut self, id: u32) {
        let State {
            streams,
            out,
            send_window,
            peer_max_frame,
            blocked,
            ..
        } = self;
        let Some(slot) = streams.get_mut(&id) else { return };
        while let Some((data, end)) = slot.pending.front_mut() {
            let window = (*send_window).min(slot.send_window).max(0) as usize;
            let n = data.len().min(window).min(*peer_max_frame);
            if n == 0 && !data.is_empty() {
                if !blocked.contains(&id) {
                    blocked.push_back(id);
                }
                return;
            }
            let last = n == data.len();
            let flags = if last && *end { flag::END_STREAM } else { 0 };
            frame::put_head(out, n, kind::DATA, flags, id);
            out.extend_from_slice(&data[..n]);
            *send_window -= n as i64;
            slot.send_window -= n as i64;
            bytes::Buf::advance(data, n);
            if last {
                slot.local_done |= *end;
                slot.pending.pop_front();
            }
        }
        self.close_if_done(id);
    }

    /// Retries every stream waiting for window.
    pub fn flush_blocked(&mut self) {
        for _ in 0..self.blocked.len() {
            if let Some(id) = self.blocked.pop_front() {
                self.flush_stream(id);
            }
        }
        self.schedule_flush();
    }

    /// Counts stream `id` out of the open ones once both sides are done.
    pub fn close_if_done(&mut self, id: u32) {
        let Some(slot) = self.streams.get_mut(&id) else {
            return;
        };
        let done = match slot.end {
            Some(End::Stream) => slot.local_done,
            Some(_) => true,
            None => false,
        };
        if done && !slot.closed {
            slot.closed = true;
            slot.pending.clear();
            self.stream_closed();
        }
    }

    fn stream_closed(&mut self) {
        self.active = self.active.saturating_sub(1);
        self.wake_next_in_line();
    }

    /// Wakes the first caller waiting for a stream: one per freed stream,
    /// not all of them (with hundreds waiting, waking all costs more CPU
    /// than the calls themselves).
    fn wake_next_in_line(&mut self) {
        if let Some((_, waker)) = self.open_waiters.pop_front() {
            self.wake.push(waker);
        }
    }

    /// Wakes every caller waiting for a stream (the limit rose, or no
    /// stream will ever open here again).
    pub fn wake_whole_line(&mut self) {
        self.wake
            .extend(self.open_waiters.drain(..).map(|(_, waker)| waker));
    }

    fn wait_in_line(&mut self, ticket: &mut Option<u64>, waker: &Waker) {
        let queued = ticket.and_then(|t| self.open_waiters.iter_mut().find(|(x, _)| *x == t));
        match (queued, *ticket) {
            (Some(entry), _) => entry.1 = waker.clone(),
            // Woken, but another caller took the stream: first in line again.
            (None, Some(t)) => self.open_waiters.push_front((t, waker.clone())),
            (None, None) => {
                let t = self.next_ticket;
                self.next_ticket += 1;
                *ticket = Some(t);
                self.open_waiters.push_back((t, waker.clone()));
            }
        }
    }

    /// A caller stops waiting (it opened its stream, or gave up). If it
    /// was woken for a free stream it did not take, the next one is woken
    /// in its place.
    fn leave_line(&mut self, ticket: Option<u64>) {
        let Some(t) = ticket else { return };
        self.open_waiters.retain(|(x, _)| *x != t);
        if self.active < self.max_concurrent {
            self.wake_next_in_line();
        }
    }

    /// Marks stream `id` ended and wakes its caller.
    pub fn end_stream(&mut self, id: u32, end: End) {
        if let Some(slot) = self.streams.get_mut(&id) {
            if slot.end.is_none() {
                slot.end = Some(end);
            }
            self.wake.extend(slot.waker.take());
        }
        self.close_if_done(id);
    }

    /// Wakes the caller of stream `id` (something arrived for it).
    pub fn touch(&mut self, id: u32) {
        if let Some(waker) = self.streams.get_mut(&id).and_then(|s| s.waker.take()) {
            self.wake.push(waker);
        }
    }

    /// Gives received bytes back to the flow-control windows (the answer
    /// is buffered at once, so the server never waits on this client).
    pub fn consumed(&mut self, id: u32, len: usize) {
        self.recv_unacked += len;
        if self.recv_unacked >= CONNECTION_WINDOW as usize / 2 {
            frame::put_window_update(&mut self.out, 0, self.recv_unacked as u32);
            self.recv_unacked = 0;
        }
        let Some(slot) = self.streams.get_mut(&id) else {
            return;
        };
        slot.recv_unacked += len;
        if slot.recv_unacked >= STREAM_WINDOW as usize / 2 && slot.end.is_none() {
            frame::put_window_update(&mut self.out, id, slot.recv_unacked as u32);
            slot.recv_unacked = 0;
        }
    }

    pub fn schedule_flush(&mut self) {
        if !self.flush_scheduled && !self.out.is_empty() {
            self.flush_scheduled = true;
            self.wake.extend(self.flush_waker.take());
        }
    }

    /// A connection going away with no streams left ends (GOAWAY sent).
    pub fn finish_if_drained(&mut self) {
        if self.draining && self.streams.is_empty() && self.closed.is_none() {
            frame::put_goaway(&mut self.out, reason::NO_ERROR);
            self.fail(Status::unavailable("connection error: the connection was closed"));
        }
    }

    /// Ends the connection: every unfinished stream fails with `status`.
    pub fn fail(&mut self, status: Status) {
        if self.closed.is_some() {
            return;
        }
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.end_stream(id, End::Failed(status.clone()));
        }
        self.closed = Some(status);
        self.drain();
        self.wake_whole_line();
        self.wake.extend(self.handshake_waker.take());
        self.flush_scheduled = false;
        self.schedule_flush();
        self.wake.extend(self.flush_waker.take());
    }

    /// No new streams from now on; the reconnect task is told.
    pub fn drain(&mut self) {
        self.draining = true;
        self.wake.extend(self.unusable_waker.take());
    }

    /// Calls the wakers collected (the lock is still held; waking only
    /// schedules the tasks).
    pub fn wake_all(&mut self) {
        for waker in self.wake.drain(..) {
            waker.wake();
        }
    }
}

/// A caller on its way to a stream: its place in the line while the
/// server's stream limit is reached, given up when dropped (a call cut by
/// its deadline does not hold up the ones behind it).
pub struct Waiting {
    link: Arc<Link>,
    ticket: Option<u64>,
}

impl Waiting {
    pub fn new(link: Arc<Link>) -> Waiting {
        Waiting { link, ticket: None }
    }

    /// See [`Link::poll_open`]; the stream is this caller's once opened.
    pub fn poll_open(
        &mut self,
        cx: &mut Context<'_>,
        rpc: FastCall,
        body: Option<&[u8]>,
        end: bool,
    ) -> Poll<Result<StreamRef, Status>> {
        let id = std::task::ready!(self.link.poll_open(cx, &mut self.ticket, rpc, body, end))?;
        Poll::Ready(Ok(StreamRef {
            link: Arc::clone(&self.link),
            id,
        }))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.ticket.is_some() {
            let mut st = self.link.lock();
            st.leave_line(self.ticket.take());
            st.wake_all();
        }
    }
}

/// A caller's hold on one stream: dropping it releases the stream (a reset
/// if it is unfinished), so a call cut by its deadline leaves nothing behind.
pub struct StreamRef {
    pub link: Arc<Link>,
    pub id: u32,
}

impl StreamRef {
    /// Ready with what `take` makes of the stream (see [`Link::poll_stream`]).
    pub fn poll<R>(&self, cx: &mut Context<'_>, take: impl FnOnce(&mut Slot) -> Option<R>) -> Poll<R> {
        self.link.poll_stream(self.id, cx, take)
    }
}

impl Drop for StreamRef {
    fn drop(&mut self) {
        self.link.release(self.id);
    }
}

/// Everything a stream received, once it ended.
#[derive(Debug)]
pub struct Answer {
    pub head: Option<Fields>,
    pub trailers: Option<Fields>,
    pub data: BytesMut,
    pub end: End,
}

/// The stream's whole answer once it has ended (for [`StreamRef::poll`]).
pub fn take_answer(slot: &mut Slot) -> Option<Answer> {
    let end = slot.end.clone()?;
    Some(Answer {
        head: slot.head.take(),
        trailers: slot.trailers.take(),
        data: std::mem::take(&mut slot.data),
        end,
    })
}
