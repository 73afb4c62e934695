//! The stream fabric hands to amiquip, which watches the AMQP handshake go by.
//!
//! Three things amiquip 0.4 cannot do, done on the bytes of the handshake:
//!
//! - **Keep the password out of the logs.** amiquip logs the start-ok frame at debug level,
//!   SASL response and all. So amiquip is given a [`Credentials::placeholder`] password of
//!   the same length, and the tap puts the real one into the frame on its way out.
//! - **Announce `authentication_failure_close`.** Without this capability in the client's
//!   `connection.start-ok`, RabbitMQ answers a refused login by waiting (3 s) and closing the
//!   socket without a word; with it, the broker sends `connection.close` 403 at once. amiquip
//!   sends a fixed capability table, so fabric adds the entry to the frame on its way out. The
//!   frame keeps its length, so the rewrite never holds bytes back from the socket: amiquip
//!   puts [`INFORMATION_PAD`] at the end of its `information` property, and the rewrite moves
//!   those bytes into the capability table (`capabilities` comes before `information` in the
//!   sorted table amiquip writes). Should the frame ever not look as expected, it goes out
//!   unchanged: the login then only fails slower.
//! - **Hear the broker's reason.** amiquip reports a `connection.close` that arrives in answer
//!   to start-ok as an unexpected frame, without its code and text. The tap reads the
//!   broker's frames until the handshake is over and keeps a close, and notices a broker that
//!   answers in TLS (a plain `amqp://` URL on a TLS port).
//!
//! After the handshake the tap only passes bytes through.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::{Evented, Poll, PollOpt, Ready, Token};
use parking_lot::Mutex;

/// The capability entry added to start-ok's `capabilities` table: short string key, `t`
/// (boolean), true.
const CAPABILITY: &[u8] = b"\x1cauthentication_failure_closet\x01";

/// Placeholder bytes at the end of the `information` client property, as long as
/// [`CAPABILITY`]: the rewrite takes them out as it puts the capability in.
pub(crate) const INFORMATION_PAD: &str = "                               ";

/// The 8 bytes a client opens an AMQP 0-9-1 connection with.
const PROTOCOL_HEADER_LEN: usize = 8;
/// Frame type of a method frame, and the byte every frame ends with.
const METHOD_FRAME: u8 = 1;
const FRAME_END: u8 = 0xCE;
/// `connection` class methods the tap cares about.
const CONNECTION: u16 = 10;
const START_OK: u16 = 11;
const OPEN_OK: u16 = 41;
const CLOSE: u16 = 50;
/// How much of the broker's handshake the tap keeps at most (connection.start is well under
/// a kilobyte).
const SNIFF_LIMIT: usize = 64 * 1024;

/// What the tap saw of the handshake, shared with the code that opened the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Observed {
    /// The broker's `connection.close` during the handshake: reply code and text.
    pub close: Option<(u16, String)>,
    /// The broker's first bytes were a TLS record, not AMQP.
    pub spoke_tls: bool,
    /// The capability went out in start-ok.
    pub announced: bool,
    /// start-ok could not be read, so the real credentials did not go out (the broker got
    /// the placeholder and refuses the login).
    pub credentials_missing: bool,
}

/// A PLAIN login's SASL response (`\0user\0password`), and the placeholder amiquip sends
/// in its place.
pub(crate) struct Credentials {
    real: Vec<u8>,
    placeholder: Vec<u8>,
}

impl Credentials {
    /// The PLAIN login of `user` with `password`.
    pub(crate) fn plain(user: &str, password: &str) -> Credentials {
        let sasl = |password: &str| format!("\0{user}\0{password}").into_bytes();
        Credentials {
            real: sasl(password),
            placeholder: sasl(&Credentials::placeholder(password)),
        }
    }

    /// The password to give amiquip for `password`: as many bytes, none of them secret.
    pub(crate) fn placeholder(password: &str) -> String {
        "*".repeat(password.len())
    }
}

/// A stream that rewrites the client's start-ok and reads the broker's handshake frames.
pub(crate) struct HandshakeTap<S> {
    inner: S,
    /// Until start-ok is out: the login to put in.
    credentials: Option<Credentials>,
    outbound: Outbound,
    /// The broker's bytes so far, until the handshake is over (then `None`).
    inbound: Option<Vec<u8>>,
    observed: Arc<Mutex<Observed>>,
}

/// Where the client's side of the handshake is.
enum Outbound {
    /// Passing the protocol header; this many bytes of it are left.
    Header(usize),
    /// The next frame is start-ok.
    StartOk,
    /// Writing the rewritten start-ok in place of amiquip's, from this offset.
    Rewritten { frame: Vec<u8>, written: usize },
    /// Past start-ok: bytes pass unchanged.
    Through,
}

impl<S> HandshakeTap<S> {
    /// Wraps `inner`; what the tap sees goes to `observed`. `credentials` is the PLAIN
    /// login whose placeholder amiquip was given, if any.
    pub(crate) fn new(
        inner: S,
        credentials: Option<Credentials>,
        observed: Arc<Mutex<Observed>>,
    ) -> HandshakeTap<S> {
        HandshakeTap {
            inner,
            credentials,
            outbound: Outbound::Header(PROTOCOL_HEADER_LEN),
            inbound: Some(Vec::new()),
            observed,
        }
    }
}

impl<S: Write> Write for HandshakeTap<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.outbound {
            Outbound::Header(left) => {
                let n = self.inner.write(&buf[..buf.len().min(*left)])?;
                *left -= n;
                if *left == 0 {
                    self.outbound = Outbound::StartOk;
                }
                Ok(n)
            }
            Outbound::StartOk => {
                // amiquip writes whole frames from its buffer, so `buf` starts with all of
                // start-ok; anything else goes out as it is.
                let credentials = self.credentials.take();
                let Some(len) = frame_len(buf).filter(|&len| len <= buf.len()) else {
                    self.observed.lock().credentials_missing = credentials.is_some();
                    self.outbound = Outbound::Through;
                    return self.inner.write(buf);
                };
                let mut frame = buf[..len].to_vec();
                let mut observed = self.observed.lock();
                if let Some(credentials) = &credentials {
                    observed.credentials_missing = !put_credentials(&mut frame, credentials);
                }
                if let Some(announced) = announce(&frame) {
                    frame = announced;
                    observed.announced = true;
                }
                drop(observed);
                self.outbound = Outbound::Rewritten { frame, written: 0 };
                self.write(buf)
            }
            Outbound::Rewritten { frame, written } => {
                // `buf` starts at byte `written` of amiquip's frame, which has the same length
                // as ours: write ours instead, never past the frame's end.
                let end = frame.len().min(*written + buf.len());
                let n = self.inner.write(&frame[*written..end])?;
                *written += n;
                if *written == frame.len() {
                    self.outbound = Outbound::Through;
                }
                Ok(n)
            }
            Outbound::Through => self.inner.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<S: Read> Read for HandshakeTap<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(seen) = &mut self.inbound {
            seen.extend_from_slice(&buf[..n]);
            let done = observe(seen, &mut self.observed.lock());
            if done || seen.len() > SNIFF_LIMIT {
                self.inbound = None;
            }
        }
        Ok(n)
    }
}

impl<S: Evented> Evented for HandshakeTap<S> {
    fn register(
        &self,
        poll: &Poll,
        token: Token,
        interest: Ready,
        opts: PollOpt,
    ) -> io::Result<()> {
        self.inner.register(poll, token, interest, opts)
    }

    fn reregister(
        &self,
        poll: &Poll,
        token: Token,
        interest: Ready,
        opts: PollOpt,
    ) -> io::Result<()> {
        self.inner.reregister(poll, token, interest, opts)
    }

    fn deregister(&self, poll: &Poll) -> io::Result<()> {
        self.inner.deregister(poll)
    }
}

impl<S: Read + Write + Evented + Send + 'static> amiquip::IoStream for HandshakeTap<S> {}

/// The length of the frame at the start of `bytes`, once its header is there.
fn frame_len(bytes: &[u8]) -> Option<usize> {
    let size = u32::from_be_bytes(bytes.get(3..7)?.try_into().ok()?);
    Some(7 + size as usize + 1)
}

/// Reads the broker's bytes so far; records what matters. True once the handshake is over
/// for the tap: open-ok or close seen, or the broker is not speaking AMQP frames.
fn observe(seen: &[u8], observed: &mut Observed) -> bool {
    match seen {
        [] | [_] => return false,
        // A TLS record (alert or handshake) where connection.start should be.
        [0x15 | 0x16, 0x03, ..] => {
            observed.spoke_tls = true;
            return true;
        }
        // Not a method frame: the broker's protocol header (it refused ours) or not AMQP.
        [first, ..] if *first != METHOD_FRAME => return true,
        _ => {}
    }
    let mut at = 0;
    while let Some(len) = frame_len(&seen[at..]) {
        let Some(frame) = seen.get(at..at + len) else {
            return false;
        };
        at += len;
        let method = |i: usize| {
            frame
                .get(i..i + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        };
        if frame[0] != METHOD_FRAME || method(7) != Some(CONNECTION) {
            continue;
        }
        match method(9) {
            Some(OPEN_OK) => return true,
            Some(CLOSE) => {
                let code = method(11).unwrap_or_default();
                let text = short_string(frame, 13).unwrap_or_default();
                observed.close = Some((code, text));
                return true;
            }
            _ => {}
        }
    }
    false
}

/// The AMQP short string at `at`.
fn short_string(bytes: &[u8], at: usize) -> Option<String> {
    let len = *bytes.get(at)? as usize;
    let raw = bytes.get(at + 1..at + 1 + len)?;
    Some(String::from_utf8_lossy(raw).into_owned())
}

/// A field of a field table: where its value's bytes are.
struct Field<'a> {
    name: &'a [u8],
    kind: u8,
    /// The value, from its length prefix (for tables and long strings) to its end.
    value: std::ops::Range<usize>,
}

/// The fields of the table whose 4-byte length is at `at`, for the value kinds amiquip
/// writes (`S` long string, `F` table, `t` boolean); `None` for anything else.
fn fields(bytes: &[u8], at: usize) -> Option<Vec<Field<'_>>> {
    let len = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
    let end = at + 4 + len;
    if end > bytes.len() {
        return None;
    }
    let mut fields = Vec::new();
    let mut pos = at + 4;
    while pos < end {
        let name_len = *bytes.get(pos)? as usize;
        let name = bytes.get(pos + 1..pos + 1 + name_len)?;
        let kind = *bytes.get(pos + 1 + name_len)?;
        let start = pos + 2 + name_len;
        let value_end = match kind {
            b'S' | b'F' => {
                start
                    + 4
                    + u32::from_be_bytes(bytes.get(start..start + 4)?.try_into().ok()?) as usize
            }
            b't' => start + 1,
            _ => return None,
        };
        if value_end > end {
            return None;
        }
        fields.push(Field {
            name,
            kind,
            value: start..value_end,
        });
        pos = value_end;
    }
    Some(fields)
}

/// Replaces the placeholder SASL response in start-ok `frame` with the real one (the same
/// length); false if the frame does not hold the placeholder where start-ok keeps it.
fn put_credentials(frame: &mut [u8], credentials: &Credentials) -> bool {
    // start-ok: class and method, the client properties table, the mechanism (short
    // string), then the response (long string).
    let response = (|| {
        let table = 11 + 4 + u32::from_be_bytes(frame.get(11..15)?.try_into().ok()?) as usize;
        let mechanism = table + 1 + *frame.get(table)? as usize;
        let len = u32::from_be_bytes(frame.get(mechanism..mechanism + 4)?.try_into().ok()?);
        let start = mechanism + 4;
        Some(start..start + len as usize)
    })();
    match response {
        Some(range) if frame.get(range.clone()) == Some(&credentials.placeholder[..]) => {
            frame[range].copy_from_slice(&credentials.real);
            true
        }
        _ => false,
    }
}

/// start-ok with `authentication_failure_close` in its capabilities and the pad taken off
/// `information`: the same length as `frame`. `None` if `frame` is not such a start-ok.
fn announce(frame: &[u8]) -> Option<Vec<u8>> {
    let len = frame.len();
    let header_ok = len > 15
        && frame[0] == METHOD_FRAME
        && frame[1..3] == [0, 0]
        && frame[len - 1] == FRAME_END
        && u16::from_be_bytes([frame[7], frame[8]]) == CONNECTION
        && u16::from_be_bytes([frame[9], frame[10]]) == START_OK;
    if !header_ok {
        return None;
    }
    // The client properties table starts right after class and method.
    let properties = fields(frame, 11)?;
    let capabilities = properties
        .iter()
        .find(|f| f.name == b"capabilities" && f.kind == b'F')?;
    let information = properties
        .iter()
        .find(|f| f.name == b"information" && f.kind == b'S')?;
    let already = fields(frame, capabilities.value.start)?
        .iter()
        .any(|f| f.name == &CAPABILITY[1..29]);
    let padded = frame[..information.value.end].ends_with(INFORMATION_PAD.as_bytes());
    if already || !padded || capabilities.value.end > information.value.start {
        return None;
    }
    let caps_end = capabilities.value.end;
    let info_end = information.value.end;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&frame[..caps_end]);
    out.extend_from_slice(CAPABILITY);
    out.extend_from_slice(&frame[caps_end..info_end - INFORMATION_PAD.len()]);
    out.extend_from_slice(&frame[info_end..]);
    let adjust = |out: &mut Vec<u8>, at: usize, grow: bool| {
        let old = u32::from_be_bytes(out[at..at + 4].try_into().expect("4 bytes"));
        let delta = CAPABILITY.len() as u32;
        let new = if grow { old + delta } else { old - delta };
        out[at..at + 4].copy_from_slice(&new.to_be_bytes());
    };
    adjust(&mut out, capabilities.value.start, true);
    adjust(&mut out, information.value.start + CAPABILITY.len(), false);
    debug_assert_eq!(out.len(), len);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field table as amiquip writes one (sorted keys).
    fn table(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, value) in entries {
            body.push(name.len() as u8);
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(value);
        }
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend(body);
        out
    }

    fn long_string(s: &str) -> Vec<u8> {
        let mut out = vec![b'S'];
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
        out
    }

    fn method_frame(class: u16, method: u16, args: &[u8]) -> Vec<u8> {
        let mut payload = class.to_be_bytes().to_vec();
        payload.extend_from_slice(&method.to_be_bytes());
        payload.extend_from_slice(args);
        let mut frame = vec![METHOD_FRAME, 0, 0];
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend(payload);
        frame.push(FRAME_END);
        frame
    }

    fn start_ok(information: &str, capabilities: &[(&str, Vec<u8>)]) -> Vec<u8> {
        start_ok_with(information, capabilities, "secret")
    }

    fn start_ok_with(
        information: &str,
        capabilities: &[(&str, Vec<u8>)],
        password: &str,
    ) -> Vec<u8> {
        let mut caps = vec![b'F'];
        caps.extend(table(capabilities));
        let mut args = table(&[
            ("capabilities", caps),
            ("information", long_string(information)),
            ("platform", long_string("linux / rustc")),
            ("product", long_string("amiquip")),
            ("version", long_string("0.4.2")),
        ]);
        args.extend_from_slice(b"\x05PLAIN");
        args.extend_from_slice(&long_string(&format!("\0guest\0{password}"))[1..]);
        args.extend_from_slice(b"\x05en_US");
        method_frame(CONNECTION, START_OK, &args)
    }

    fn amiquip_start_ok() -> Vec<u8> {
        amiquip_start_ok_with("secret")
    }

    /// start-ok as amiquip writes it for fabric, with `password`.
    fn amiquip_start_ok_with(password: &str) -> Vec<u8> {
        start_ok_with(
            &format!("fabric d.t.i{INFORMATION_PAD}"),
            &[
                ("connection.blocked", vec![b't', 1]),
                ("consumer_cancel_notify", vec![b't', 1]),
            ],
            password,
        )
    }

    #[test]
    fn the_password_goes_in_on_the_way_out() {
        let credentials = Credentials::plain("guest", "pässwörd");
        let mut frame = amiquip_start_ok_with(&Credentials::placeholder("pässwörd"));
        assert!(put_credentials(&mut frame, &credentials));
        assert_eq!(frame, amiquip_start_ok_with("pässwörd"));
        // Not where start-ok keeps it: nothing is touched.
        let mut other = amiquip_start_ok_with("something-else");
        assert!(!put_credentials(&mut other, &credentials));
        assert_eq!(other, amiquip_start_ok_with("something-else"));
    }

    #[test]
    fn start_ok_gains_the_capability_and_keeps_its_length() {
        let frame = amiquip_start_ok();
        let rewritten = announce(&frame).expect("rewritten");
        let expected = start_ok(
            "fabric d.t.i",
            &[
                ("connection.blocked", vec![b't', 1]),
                ("consumer_cancel_notify", vec![b't', 1]),
                ("authentication_failure_close", vec![b't', 1]),
            ],
        );
        assert_eq!(rewritten, expected);
        assert_eq!(rewritten.len(), frame.len());
    }

    #[test]
    fn frames_that_do_not_fit_go_out_unchanged() {
        // No pad in `information`.
        assert!(announce(&start_ok("fabric d.t.i", &[])).is_none());
        // The capability is there already.
        let has = start_ok(
            &format!("x{INFORMATION_PAD}"),
            &[("authentication_failure_close", vec![b't', 1])],
        );
        assert!(announce(&has).is_none());
        // Not start-ok.
        assert!(announce(&method_frame(CONNECTION, 31, &[0; 8])).is_none());
    }

    /// A socket that takes at most `chunk` bytes per write.
    struct Slow {
        written: Vec<u8>,
        chunk: usize,
    }

    impl Write for Slow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.chunk);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Writes `bytes` as amiquip does: from its buffer until all is taken.
    fn write_all_as_amiquip(tap: &mut HandshakeTap<Slow>, bytes: &[u8]) {
        let mut pos = 0;
        while pos < bytes.len() {
            pos += tap.write(&bytes[pos..]).unwrap();
        }
    }

    #[test]
    fn partial_writes_send_the_rewritten_frame_whole() {
        for chunk in [1, 5, 8, 13, 4096] {
            let observed = Arc::new(Mutex::new(Observed::default()));
            let slow = Slow {
                written: Vec::new(),
                chunk,
            };
            let credentials = Credentials::plain("guest", "secret");
            let mut tap = HandshakeTap::new(slow, Some(credentials), Arc::clone(&observed));
            write_all_as_amiquip(&mut tap, b"AMQP\x00\x00\x09\x01");
            let frame = amiquip_start_ok_with("******");
            let mut then = frame.clone();
            then.extend_from_slice(b"next frame");
            write_all_as_amiquip(&mut tap, &then);
            let mut expected = b"AMQP\x00\x00\x09\x01".to_vec();
            expected.extend(announce(&amiquip_start_ok_with("secret")).unwrap());
            expected.extend_from_slice(b"next frame");
            assert_eq!(tap.inner.written, expected, "chunk {chunk}");
            assert!(observed.lock().announced);
            assert!(!observed.lock().credentials_missing);
        }
    }

    #[test]
    fn the_brokers_close_is_kept() {
        let start = method_frame(CONNECTION, 10, &[0, 9, 0, 0, 0, 0]);
        let mut close_args = 403u16.to_be_bytes().to_vec();
        let text = "ACCESS_REFUSED - Login was refused";
        close_args.push(text.len() as u8);
        close_args.extend_from_slice(text.as_bytes());
        close_args.extend_from_slice(&[0, 10, 0, 11]);
        let close = method_frame(CONNECTION, CLOSE, &close_args);
        let mut stream = start.clone();
        stream.extend_from_slice(&close);
        // Byte by byte, as a slow socket might deliver it.
        let mut observed = Observed::default();
        let mut seen = Vec::new();
        let mut done = false;
        for byte in stream {
            seen.push(byte);
            done = observe(&seen, &mut observed);
        }
        assert!(done);
        assert_eq!(observed.close, Some((403, text.to_owned())));
    }

    #[test]
    fn a_tls_answer_is_noticed() {
        let mut observed = Observed::default();
        assert!(observe(
            &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46],
            &mut observed
        ));
        assert!(observed.spoke_tls);
    }
}
