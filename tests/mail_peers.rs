//! The loopback mail peers themselves: the SMTP server driven by a raw SMTP
//! conversation, and the SMS webhook receiver by signed and unsigned posts.

use std::io::ErrorKind;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::support::mail::{TestSmsWebhook, TestSmtp, webhook_signature};

const WAIT: Duration = Duration::from_secs(5);

/// A raw SMTP client: one command, one (possibly multi-line) reply.
struct Client {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl Client {
    async fn connect(smtp: &TestSmtp) -> Client {
        let (read, write) = TcpStream::connect(smtp.addr).await.unwrap().into_split();
        let mut client = Client {
            read: BufReader::new(read),
            write,
        };
        let (code, _) = client.reply().await;
        assert_eq!(code, 220);
        client
    }

    async fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(WAIT, self.read.read_line(&mut line))
                .await
                .expect("a reply within 5 s")
                .unwrap();
            assert!(n > 0, "connection closed; so far: {text}");
            text.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return (line[..3].parse().unwrap(), text);
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> (u16, String) {
        self.write
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }

    async fn expect(&mut self, line: &str, code: u16) -> String {
        let (got, text) = self.cmd(line).await;
        assert_eq!(got, code, "{line} -> {text}");
        text
    }

    /// MAIL, RCPT(s), DATA with `message` (`\n` line ends, dot-stuffed
    /// here); the final reply code.
    async fn send(&mut self, from: &str, to: &[&str], message: &str) -> u16 {
        self.expect(&format!("MAIL FROM:<{from}>"), 250).await;
        for rcpt in to {
            self.expect(&format!("RCPT TO:<{rcpt}> NOTIFY=NEVER"), 250)
                .await;
        }
        let (code, text) = self.cmd("DATA").await;
        if code != 354 {
            return code;
        }
        assert!(text.starts_with("354"), "{text}");
        let mut wire = String::new();
        for line in message.strip_suffix('\n').unwrap_or(message).split('\n') {
            if line.starts_with('.') {
                wire.push('.');
            }
            wire.push_str(line);
            wire.push_str("\r\n");
        }
        wire.push_str(".\r\n");
        self.write.write_all(wire.as_bytes()).await.unwrap();
        self.reply().await.0
    }
}

const ALTERNATIVE: &str = "\
From: Identity <noreply@example.com>
To: bob@example.com
Subject: =?utf-8?b?Q29kZSBkZQ==?=
 =?utf-8?q?_v=C3=A9rification?=
MIME-Version: 1.0
Content-Type: multipart/alternative;
 boundary=\"BOUNDARY\"

--BOUNDARY
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Your code is 123456.
.hidden line starting with a dot
Open (https://app.example.com/verify?token=3Dabc&x=3Dy) or caf=C3=A9 1234567=
89 token=3Dxyz
--BOUNDARY
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PHA+WW91ciBjb2RlIGlzIDxiPjEyMzQ1NjwvYj4uPC9wPg==
--BOUNDARY--
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_server() {
    let smtp = TestSmtp::start().await;
    assert_eq!(
        smtp.url(),
        format!("smtp://127.0.0.1:{}?tls=none", smtp.addr.port())
    );

    // AUTH PLAIN inline, two messages on one connection.
    let mut c = Client::connect(&smtp).await;
    let ehlo = c.expect("EHLO client.test", 250).await;
    assert!(
        ehlo.contains("AUTH PLAIN LOGIN") && ehlo.contains("8BITMIME"),
        "{ehlo}"
    );
    let plain = STANDARD.encode("\0alice@example.com\0secret");
    c.expect(&format!("AUTH PLAIN {plain}"), 235).await;
    let to = ["bob@example.com", "carol@example.com"];
    assert_eq!(c.send("noreply@example.com", &to, ALTERNATIVE).await, 250);
    c.expect("RSET", 250).await;
    c.expect("NOOP", 250).await;
    c.expect("RCPT TO:<x@example.com>", 503).await;
    let single = "Subject: Plain\n\nHello 654321 and 99999 and abc123456\n";
    assert_eq!(c.send("", &["Dave@Example.com"], single).await, 250);
    c.expect("QUIT", 221).await;

    let got = smtp.wait_for(2, WAIT).await;
    let m = &got[0];
    assert_eq!(m.from, "noreply@example.com");
    assert_eq!(m.to, to);
    assert_eq!(m.auth_user.as_deref(), Some("alice@example.com"));
    assert!(m.data.contains("\r\n.hidden line"), "{}", m.data);
    assert!(!m.data.contains("..hidden"), "{}", m.data);
    assert_eq!(m.subject().as_deref(), Some("Code de vérification"));
    assert_eq!(m.header("TO").as_deref(), Some("bob@example.com"));
    assert_eq!(
        m.text_body(),
        "Your code is 123456.\n.hidden line starting with a dot\n\
         Open (https://app.example.com/verify?token=abc&x=y) or café 123456789 token=xyz"
    );
    assert_eq!(m.html_body(), "<p>Your code is <b>123456</b>.</p>");
    assert_eq!(m.code().as_deref(), Some("123456"));
    assert_eq!(
        m.find("https://").as_deref(),
        Some("https://app.example.com/verify?token=abc&x=y")
    );
    assert_eq!(m.find("token=").as_deref(), Some("token=xyz"));
    assert_eq!(m.find("nothing"), None);

    let m = &got[1];
    assert_eq!(
        (m.from.as_str(), m.subject().as_deref()),
        ("", Some("Plain"))
    );
    assert_eq!(m.text_body(), "Hello 654321 and 99999 and abc123456\n");
    assert_eq!(m.html_body(), "");
    assert_eq!(m.code().as_deref(), Some("654321"));
    assert_eq!(smtp.messages_to("dave@example.com"), vec![m.clone()]);
    assert_eq!(smtp.messages_to("carol@example.com").len(), 1);

    // AUTH LOGIN; a refused DATA, then an accepted one.
    let mut c = Client::connect(&smtp).await;
    c.expect("EHLO client.test", 250).await;
    let challenge = c.expect("AUTH LOGIN", 334).await;
    assert_eq!(challenge.trim(), "334 VXNlcm5hbWU6");
    c.expect(&STANDARD.encode("mailer"), 334).await;
    c.expect(&STANDARD.encode("pw"), 235).await;
    smtp.fail_next(1);
    assert_eq!(
        c.send("a@example.com", &["e@example.com"], single).await,
        451
    );
    assert_eq!(
        c.send("a@example.com", &["e@example.com"], single).await,
        250
    );
    c.expect("QUIT", 221).await;
    let got = smtp.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].auth_user.as_deref(), Some("mailer"));

    // AUTH PLAIN as a continuation; no AUTH at all after HELO.
    let mut c = Client::connect(&smtp).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("AUTH PLAIN", 334).await;
    c.expect(&STANDARD.encode("admin\0carl\0pw"), 235).await;
    c.expect("AUTH CRAM-MD5", 504).await;
    assert_eq!(
        c.send("a@example.com", &["f@example.com"], single).await,
        250
    );
    let mut anonymous = Client::connect(&smtp).await;
    anonymous.expect("HELO client.test", 250).await;
    assert_eq!(
        anonymous
            .send("a@example.com", &["g@example.com"], single)
            .await,
        250
    );
    let got = smtp.wait_for(5, WAIT).await;
    assert_eq!(got[3].auth_user.as_deref(), Some("carl"));
    assert_eq!(got[4].auth_user, None);

    // Stopped: refused, and open connections dropped; restarted on the
    // same port with the messages kept.
    smtp.stop().await;
    let refused = TcpStream::connect(smtp.addr).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    let mut buf = String::new();
    let read = tokio::time::timeout(WAIT, c.read.read_line(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?} {buf}");
    smtp.restart().await;
    let mut c = Client::connect(&smtp).await;
    c.expect("EHLO client.test", 250).await;
    assert_eq!(
        c.send("a@example.com", &["h@example.com"], single).await,
        250
    );
    let got = smtp.wait_for(6, WAIT).await;
    assert_eq!(got.len(), 6);
    assert_eq!(smtp.messages()[0].from, "noreply@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_webhook() {
    // The Standard Webhooks test vector.
    let vector = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert_eq!(
        webhook_signature(
            vector,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            br#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );

    let secret = format!("whsec_{}", STANDARD.encode([7u8; 24]));
    let sms = TestSmsWebhook::start(&secret).await;
    assert_eq!(sms.secret(), secret);
    let client = reqwest::Client::new();
    let post = |body: &'static str, id: &str, signature: String| {
        client
            .post(sms.url())
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", "1700000000")
            .header("webhook-signature", signature)
            .body(body)
            .send()
    };

    let good = r#"{"to":"+15550001111","body":"Your code: 246810. Expires soon."}"#;
    let signature = webhook_signature(&secret, "msg_1", "1700000000", good.as_bytes());
    let resp = post(good, "msg_1", format!("v1,bm9wZQ== {signature}"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let bad = r#"{"to":"+15550002222","body":"tampered 135791"}"#;
    let resp = post(bad, "msg_2", signature.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);

    sms.fail_next(1);
    let resp = post(good, "msg_3", signature.clone()).await.unwrap();
    assert_eq!(resp.status(), 500);
    let resp = client.get(sms.url()).send().await.unwrap();
    assert_eq!(resp.status(), 405);

    let got = sms.wait_for(2, WAIT).await;
    assert_eq!(got.len(), 2);
    assert_eq!(sms.requests(), 4);
    assert_eq!(got[0].to, "+15550001111");
    assert_eq!(got[0].body, "Your code: 246810. Expires soon.");
    assert_eq!(
        (got[0].id.as_str(), got[0].timestamp.as_str()),
        ("msg_1", "1700000000")
    );
    assert!(got[0].signature_valid);
    assert_eq!(got[0].code().as_deref(), Some("246810"));
    assert!(!got[1].signature_valid);
    assert_eq!(got[1].code().as_deref(), Some("135791"));
    assert_eq!(sms.messages(), got);
}
