//! Two real loopback peers for the email and SMS tests: a minimal SMTP
//! server ([`TestSmtp`]) that captures what a real client sends it, and an
//! HTTP receiver of SMS webhooks ([`TestSmsWebhook`]) that checks their
//! Standard Webhooks signatures.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

// ---------------------------------------------------------------- SMTP --

/// One message accepted by [`TestSmtp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The envelope sender (`MAIL FROM`); empty for the null sender `<>`.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), in order.
    pub to: Vec<String>,
    /// The message as sent after `DATA` (headers and body, line ends as
    /// sent), dot-stuffing undone, without the final `.` line.
    pub data: String,
    /// The user name of the connection's `AUTH`, if it authenticated.
    pub auth_user: Option<String>,
}

impl Captured {
    /// A top-level header (name case-insensitive), unfolded, with RFC 2047
    /// encoded words decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        let data = self.data.replace("\r\n", "\n");
        let (headers, _) = split_entity(&data);
        header(&headers, name).map(decode_words)
    }

    pub fn subject(&self) -> Option<String> {
        self.header("subject")
    }

    /// The decoded `text/plain` part (the first one not an attachment), with
    /// `\n` line ends; empty when there is none.
    pub fn text_body(&self) -> String {
        self.part("text/plain")
    }

    /// The decoded `text/html` part, as [`Captured::text_body`].
    pub fn html_body(&self) -> String {
        self.part("text/html")
    }

    /// The first whitespace-delimited word of the text body that starts with
    /// `prefix`, with surrounding punctuation (`(<["'` before, `.,;:!?)]>"'`
    /// after) trimmed. Without a text part, the HTML part's text is searched.
    pub fn find(&self, prefix: &str) -> Option<String> {
        self.searchable()
            .split_whitespace()
            .map(|w| {
                w.trim_start_matches(['(', '<', '[', '"', '\''])
                    .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '>', '"', '\''])
            })
            .find(|w| w.starts_with(prefix))
            .map(str::to_string)
    }

    /// The first word of the text body (HTML's text without one) that is
    /// exactly six ASCII digits, punctuation around it aside.
    pub fn code(&self) -> Option<String> {
        standalone_code(&self.searchable())
    }

    fn searchable(&self) -> String {
        let text = self.text_body();
        if text.trim().is_empty() {
            html_text(&self.html_body())
        } else {
            text
        }
    }

    fn part(&self, mime: &str) -> String {
        let mut leaves = Vec::new();
        collect_leaves(&self.data.replace("\r\n", "\n"), &mut leaves, 0);
        leaves
            .into_iter()
            .find(|l| l.mime == mime && !l.attachment)
            .map(|l| l.text)
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct SmtpState {
    messages: Mutex<Vec<Captured>>,
    fail_next: AtomicUsize,
}

/// A minimal SMTP server on `127.0.0.1` (plain TCP): EHLO/HELO, AUTH PLAIN
/// and LOGIN (any credentials), MAIL, RCPT, DATA, RSET, NOOP, QUIT, several
/// messages per connection.
pub struct TestSmtp {
    pub addr: SocketAddr,
    state: Arc<SmtpState>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl TestSmtp {
    pub async fn start() -> TestSmtp {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the test SMTP server");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(SmtpState::default());
        let accept = tokio::spawn(smtp_accept(listener, state.clone()));
        TestSmtp {
            addr,
            state,
            accept: Mutex::new(Some(accept)),
        }
    }

    /// `smtp://127.0.0.1:PORT?tls=none`
    pub fn url(&self) -> String {
        format!("smtp://{}?tls=none", self.addr)
    }

    /// Everything captured so far (kept across [`stop`](Self::stop) and
    /// [`restart`](Self::restart)).
    pub fn messages(&self) -> Vec<Captured> {
        self.state.messages.lock().unwrap().clone()
    }

    /// The messages with `addr` among their envelope recipients
    /// (case-insensitive).
    pub fn messages_to(&self, addr: &str) -> Vec<Captured> {
        self.messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(addr)))
            .collect()
    }

    /// Waits until at least `n` messages are captured; panics after
    /// `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Captured> {
        wait_until("TestSmtp", &self.state.messages, n, timeout).await
    }

    /// The next `n` DATA commands answer `451 4.3.0 temporary failure`.
    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Closes the listener (connections are refused) and drops the open
    /// connections; captured messages are kept.
    pub async fn stop(&self) {
        let task = self.accept.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port (stopping first if running).
    pub async fn restart(&self) {
        self.stop().await;
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(e) if tries >= 100 => panic!("TestSmtp: rebinding {} failed: {e}", self.addr),
                Err(_) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let accept = tokio::spawn(smtp_accept(listener, self.state.clone()));
        *self.accept.lock().unwrap() = Some(accept);
    }
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        let accept = self.accept.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = accept.take() {
            task.abort();
        }
    }
}

/// Accepts connections; aborting it drops the listener and, through the
/// `JoinSet`, every open session.
async fn smtp_accept(listener: TcpListener, state: Arc<SmtpState>) {
    let mut sessions = JoinSet::new();
    loop {
        while sessions.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _)) => {
                sessions.spawn(smtp_session(stream, state.clone()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn smtp_session(stream: TcpStream, state: Arc<SmtpState>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut auth_user: Option<String> = None;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    write.write_all(b"220 127.0.0.1 ESMTP test\r\n").await?;
    while let Some(line) = read_line(&mut read).await? {
        let upper = line.to_ascii_uppercase();
        let reply = match upper.split_whitespace().next().unwrap_or("") {
            "EHLO" => {
                (from, to) = (None, Vec::new());
                "250-127.0.0.1\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SMTPUTF8"
            }
            "HELO" => {
                (from, to) = (None, Vec::new());
                "250 127.0.0.1"
            }
            "AUTH" => match smtp_auth(&line, &mut read, &mut write).await? {
                Ok(user) => {
                    auth_user = Some(user);
                    "235 2.7.0 Authentication successful"
                }
                Err(reply) => reply,
            },
            "MAIL" if upper.starts_with("MAIL FROM:") => {
                (from, to) = (Some(path_arg(&line)), Vec::new());
                "250 2.1.0 OK"
            }
            "RCPT" if from.is_none() => "503 5.5.1 MAIL first",
            "RCPT" if upper.starts_with("RCPT TO:") => {
                to.push(path_arg(&line));
                "250 2.1.5 OK"
            }
            "DATA" if to.is_empty() => "503 5.5.1 RCPT first",
            "DATA" if take_one(&state.fail_next) => {
                (from, to) = (None, Vec::new());
                "451 4.3.0 temporary failure"
            }
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let Some(data) = read_data(&mut read).await? else {
                    return Ok(());
                };
                state.messages.lock().unwrap().push(Captured {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                    auth_user: auth_user.clone(),
                });
                "250 2.0.0 OK queued"
            }
            "RSET" => {
                (from, to) = (None, Vec::new());
                "250 2.0.0 OK"
            }
            "NOOP" => "250 2.0.0 OK",
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            "MAIL" | "RCPT" => "501 5.5.4 syntax error",
            _ => "502 5.5.2 command not recognized",
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
    Ok(())
}

/// Runs an AUTH exchange; the user name, or the reply refusing it.
async fn smtp_auth<R, W>(
    line: &str,
    read: &mut R,
    write: &mut W,
) -> std::io::Result<Result<String, &'static str>>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut words = line.split_whitespace().skip(1);
    let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
    let initial = words.next().map(str::to_string);
    // A client's answer to a challenge; `None` when it cancelled or left.
    async fn answer<R, W>(
        read: &mut R,
        write: &mut W,
        challenge: &str,
    ) -> std::io::Result<Option<String>>
    where
        R: AsyncBufRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        write
            .write_all(format!("334 {challenge}\r\n").as_bytes())
            .await?;
        Ok(read_line(read).await?.filter(|a| a.trim() != "*"))
    }
    let decode = |s: &str| {
        STANDARD
            .decode(s.trim())
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    const CANCELLED: &str = "501 5.0.0 authentication cancelled";
    const MALFORMED: &str = "501 5.5.2 malformed authentication response";
    match mechanism.as_str() {
        "PLAIN" => {
            let response = match initial {
                Some(r) if r == "=" => String::new(),
                Some(r) => r,
                None => match answer(read, write, "").await? {
                    Some(r) => r,
                    None => return Ok(Err(CANCELLED)),
                },
            };
            // authzid NUL authcid NUL password
            let fields: Option<Vec<String>> =
                decode(&response).map(|d| d.split('\0').map(str::to_string).collect());
            Ok(match fields {
                Some(f) if f.len() == 3 => Ok(f[1].clone()),
                _ => Err(MALFORMED),
            })
        }
        "LOGIN" => {
            let user = match initial {
                Some(u) => u,
                // "Username:"
                None => match answer(read, write, "VXNlcm5hbWU6").await? {
                    Some(u) => u,
                    None => return Ok(Err(CANCELLED)),
                },
            };
            // "Password:"
            let Some(password) = answer(read, write, "UGFzc3dvcmQ6").await? else {
                return Ok(Err(CANCELLED));
            };
            Ok(match (decode(&user), decode(&password)) {
                (Some(user), Some(_)) => Ok(user),
                _ => Err(MALFORMED),
            })
        }
        _ => Ok(Err("504 5.5.4 unrecognized authentication type")),
    }
}

/// One line without its line end; `None` at end of stream.
async fn read_line<R: AsyncBufRead + Unpin>(read: &mut R) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    if read.read_until(b'\n', &mut buf).await? == 0 {
        return Ok(None);
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// The lines up to the lone `.`, dot-stuffing undone; `None` when the
/// stream ends first.
async fn read_data<R: AsyncBufRead + Unpin>(read: &mut R) -> std::io::Result<Option<String>> {
    let mut data = Vec::new();
    loop {
        let mut line = Vec::new();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(None);
        }
        if line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            == Some(b".")
        {
            return Ok(Some(String::from_utf8_lossy(&data).into_owned()));
        }
        data.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
    }
}

/// The address of `MAIL FROM:<a> …` or `RCPT TO:<a> …`.
fn path_arg(line: &str) -> String {
    let arg = line.split_once(':').map_or("", |(_, a)| a).trim_start();
    match arg.strip_prefix('<') {
        Some(rest) => rest.split('>').next().unwrap_or(""),
        None => arg.split_whitespace().next().unwrap_or(""),
    }
    .to_string()
}

// ----------------------------------------------------------------- MIME --

struct Leaf {
    mime: String,
    attachment: bool,
    text: String,
}

type Headers = Vec<(String, String)>;

/// Headers (names lowercased, values unfolded) and body of an entity whose
/// line ends are `\n`.
fn split_entity(raw: &str) -> (Headers, &str) {
    let (head, body) = if let Some(body) = raw.strip_prefix('\n') {
        ("", body)
    } else {
        match raw.find("\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None => (raw, ""),
        }
    };
    let mut headers: Headers = Vec::new();
    for line in head.split('\n') {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    (headers, body)
}

fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// A parameter (`name=value`, unquoted) of a header value like Content-Type.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn collect_leaves(raw: &str, out: &mut Vec<Leaf>, depth: usize) {
    let (headers, body) = split_entity(raw);
    let content_type = header(&headers, "content-type").unwrap_or("text/plain");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime.starts_with("multipart/")
        && depth < 8
        && let Some(boundary) = param(content_type, "boundary")
    {
        for part in split_multipart(body, &boundary) {
            collect_leaves(&part, out, depth + 1);
        }
        return;
    }
    let encoding = header(&headers, "content-transfer-encoding")
        .unwrap_or("7bit")
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "quoted-printable" => qp_decode(body.as_bytes()),
        "base64" => {
            let compact: String = body.split_whitespace().collect();
            STANDARD
                .decode(compact)
                .unwrap_or_else(|e| panic!("a {mime} part is not valid base64 ({e}): {body}"))
        }
        _ => body.as_bytes().to_vec(),
    };
    let charset = param(content_type, "charset").unwrap_or_default();
    out.push(Leaf {
        attachment: header(&headers, "content-disposition")
            .is_some_and(|d| d.to_ascii_lowercase().starts_with("attachment")),
        text: charset_decode(&charset, &bytes).replace("\r\n", "\n"),
        mime,
    });
}

/// The parts between `--boundary` lines, up to `--boundary--`.
fn split_multipart(body: &str, boundary: &str) -> Vec<String> {
    let delimiter = format!("--{boundary}");
    let close = format!("{delimiter}--");
    let mut parts = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in body.split('\n') {
        let trimmed = line.trim_end();
        if trimmed == delimiter || trimmed == close {
            if let Some(lines) = current.take() {
                parts.push(lines.join("\n"));
            }
            if trimmed == close {
                break;
            }
            current = Some(Vec::new());
        } else if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    parts
}

fn qp_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'=' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        // A soft line break: `=`, optional trailing blanks, line end.
        let mut j = i + 1;
        while j < input.len() && (input[j] == b' ' || input[j] == b'\t' || input[j] == b'\r') {
            j += 1;
        }
        if j == input.len() || input[j] == b'\n' {
            i = j + 1;
            continue;
        }
        match (
            input.get(i + 1).and_then(|b| hex(*b)),
            input.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (Some(hi), Some(lo)) => {
                out.push((hi << 4) | lo);
                i += 3;
            }
            _ => {
                out.push(b'=');
                i += 1;
            }
        }
    }
    out
}

fn charset_decode(charset: &str, bytes: &[u8]) -> String {
    let charset = charset.to_ascii_lowercase();
    if charset == "iso-8859-1" || charset == "latin1" {
        bytes.iter().map(|b| *b as char).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Decodes RFC 2047 encoded words (`=?charset?B|Q?text?=`); blanks between
/// two adjacent encoded words are dropped.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(i) = rest.find("=?") {
        let (before, word) = (&rest[..i], &rest[i + 2..]);
        match encoded_word(word) {
            Some((decoded, len)) => {
                if !(after_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&decoded);
                rest = &word[len..];
                after_word = true;
            }
            None => {
                out.push_str(&rest[..i + 2]);
                rest = word;
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The decoded text of `charset?E?text?=` and the length it spans.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let (charset, rest) = s.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    if charset.is_empty()
        || charset.contains(char::is_whitespace)
        || text.contains(char::is_whitespace)
    {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => STANDARD.decode(text).ok()?,
        "Q" | "q" => qp_decode(text.replace('_', " ").as_bytes()),
        _ => return None,
    };
    let len = charset.len() + encoding.len() + end + 4;
    let charset = charset.split('*').next().unwrap_or(charset);
    Some((charset_decode(charset, &bytes), len))
}

/// The text of an HTML document: tags become blanks, common entities are
/// decoded.
fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// The first whitespace-delimited word that is exactly six ASCII digits,
/// punctuation around it aside.
fn standalone_code(text: &str) -> Option<String> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
}

// ------------------------------------------------------------------ SMS --

/// One SMS webhook accepted by [`TestSmsWebhook`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms {
    pub to: String,
    pub body: String,
    /// The `webhook-id` header.
    pub id: String,
    /// The `webhook-timestamp` header (Unix seconds, as sent).
    pub timestamp: String,
    /// Whether `webhook-signature` holds a `v1,` signature of
    /// `{id}.{timestamp}.{body}` under the receiver's secret.
    pub signature_valid: bool,
}

impl Sms {
    /// The first word of the body that is exactly six ASCII digits.
    pub fn code(&self) -> Option<String> {
        standalone_code(&self.body)
    }
}

struct SmsState {
    key: Vec<u8>,
    messages: Mutex<Vec<Sms>>,
    fail_next: AtomicUsize,
    requests: AtomicUsize,
}

/// An HTTP server on `127.0.0.1` taking SMS webhooks: POSTed JSON
/// `{"to", "body"}` signed as Standard Webhooks. It answers 200 (also to a
/// bad signature, which is recorded), 500 while failing, 400 to a body
/// that is not JSON and 405 to other methods; only the 200s are captured.
pub struct TestSmsWebhook {
    pub addr: SocketAddr,
    secret: String,
    state: Arc<SmsState>,
    task: JoinHandle<()>,
}

impl TestSmsWebhook {
    /// `secret` is `whsec_<base64 key>`.
    pub async fn start(secret: &str) -> TestSmsWebhook {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
            .expect("a webhook secret is whsec_<base64>");
        let state = Arc::new(SmsState {
            key,
            messages: Mutex::new(Vec::new()),
            fail_next: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the test SMS webhook");
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .fallback(receive_sms)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestSmsWebhook {
            addr,
            secret: secret.to_string(),
            state,
            task,
        }
    }

    /// `http://127.0.0.1:PORT/sms` (any path is accepted).
    pub fn url(&self) -> String {
        format!("http://{}/sms", self.addr)
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn messages(&self) -> Vec<Sms> {
        self.state.messages.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages are captured; panics after
    /// `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Sms> {
        wait_until("TestSmsWebhook", &self.state.messages, n, timeout).await
    }

    /// The next `n` requests answer 500 (and are not captured).
    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Every request received, failed and refused ones included.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TestSmsWebhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `webhook-signature` entry (`v1,<base64>`) for a message, under
/// `secret` (`whsec_<base64 key>`).
pub fn webhook_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .expect("a webhook secret is whsec_<base64>");
    format!("v1,{}", sign(&key, id, timestamp, body))
}

fn sign(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

async fn receive_sms(
    State(state): State<Arc<SmsState>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED;
    }
    if take_one(&state.fail_next) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (id, timestamp) = (get("webhook-id"), get("webhook-timestamp"));
    let expected = sign(&state.key, &id, &timestamp, &body);
    let signature_valid = !id.is_empty()
        && !timestamp.is_empty()
        && get("webhook-signature")
            .split_whitespace()
            .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()));
    let field = |name: &str| json[name].as_str().unwrap_or("").to_string();
    state.messages.lock().unwrap().push(Sms {
        to: field("to"),
        body: field("body"),
        id,
        timestamp,
        signature_valid,
    });
    StatusCode::OK
}

// --------------------------------------------------------------- shared --

/// Decrements `counter` if it is above zero; whether it was.
fn take_one(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

async fn wait_until<T: Clone + Debug>(
    peer: &str,
    list: &Mutex<Vec<T>>,
    n: usize,
    timeout: Duration,
) -> Vec<T> {
    let started = Instant::now();
    loop {
        let items = list.lock().unwrap().clone();
        if items.len() >= n {
            return items;
        }
        if started.elapsed() > timeout {
            panic!(
                "{peer}: expected at least {n} message(s) within {timeout:?}, got {}: {items:#?}",
                items.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
