//! Avatars: every accepted format (by content), re-encoded without their
//! metadata; what is not an image, or too big, or a pixel bomb, refused
//! with a clear 4xx; served to an `<img>` with no key as the image it was
//! decoded as, `nosniff`; replaced and deleted objects gone; in the local
//! directory store and in an S3-compatible one (s3s-fs on loopback).

use std::io::Cursor;
use std::time::{Duration, Instant};

use image::{DynamicImage, ImageFormat, RgbaImage};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::on_both;
use crate::support::{Project, Store, TestApp, access_token};

on_both!(
    avatars_in_every_format_and_nothing_else,
    avatars_in_an_s3_compatible_store
);

const PW: &str = "correct horse battery staple";

fn picture(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let rgba = DynamicImage::ImageRgba8(RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x * 7) as u8, (y * 5) as u8, 90, 255])
    }));
    let mut out = Vec::new();
    match format {
        ImageFormat::WebP => rgba
            .write_with_encoder(image::codecs::webp::WebPEncoder::new_lossless(&mut out))
            .unwrap(),
        ImageFormat::Jpeg => DynamicImage::ImageRgb8(rgba.to_rgb8())
            .write_to(&mut Cursor::new(&mut out), format)
            .unwrap(),
        _ => rgba.write_to(&mut Cursor::new(&mut out), format).unwrap(),
    }
    out
}

/// A JPEG carrying an EXIF segment (a camera's, with a GPS-ish marker).
fn jpeg_with_exif() -> Vec<u8> {
    let plain = picture(ImageFormat::Jpeg, 64, 48);
    let payload = b"Exif\0\0MM\0*\0\0\0\x08GPS-SECRET-LOCATION";
    let len = (payload.len() + 2) as u16;
    let mut out = plain[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&plain[2..]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose header promises 100 000 × 100 000 pixels (40 GB decoded),
/// with a few bytes of data: a decompression bomb's shape.
fn pixel_bomb() -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

/// Uploads `body` raw (with a declared content type) or as the multipart
/// field `file`.
async fn upload(
    app: &TestApp,
    p: &Project,
    token: &str,
    body: Vec<u8>,
    declared: &str,
    multipart: bool,
) -> (StatusCode, Value) {
    let req = app
        .public_req(Method::PUT, "/v1/users/me/avatar")
        .header("x-project-key", &p.pk)
        .bearer_auth(token);
    let req = if multipart {
        let boundary = "identity-test-boundary-7f3a";
        let mut form = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"me.png\"\r\nContent-Type: {declared}\r\n\r\n"
        )
        .into_bytes();
        form.extend_from_slice(&body);
        form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        req.header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
    } else {
        req.header("content-type", declared).body(body)
    };
    crate::support::send(req).await
}

/// Sends only the headers of an upload declaring `length` bytes, and reads
/// the answer (a server that refuses by the headers answers at once).
async fn declared_upload(app: &TestApp, p: &Project, token: &str, length: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.public.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /v1/users/me/avatar HTTP/1.1\r\nHost: {addr}\r\nX-Project-Key: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: image/png\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n",
        p.pk
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer without the body")
        .unwrap();
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// The local object store's directory of a test server.
fn objects_dir(app: &TestApp) -> std::path::PathBuf {
    match app.env.get("IDENTITY_OBJECT_STORE_URL") {
        Some(url) => url.trim_start_matches("file://").into(),
        None => {
            let db = &app.env["IDENTITY_DATABASE_URL"];
            let path = std::path::Path::new(db.trim_start_matches("sqlite://"));
            path.parent().unwrap().join("objects")
        }
    }
}

/// Fetches an avatar URL as an `<img>` would: no key, no cookie. (The
/// URL names the configured public base; the test server listens on a
/// port of its own.)
async fn fetch(app: &TestApp, url: &str) -> reqwest::Response {
    let url = url.replace("http://localhost:8080", &app.public);
    reqwest::Client::new().get(url).send().await.unwrap()
}

async fn avatars_in_every_format_and_nothing_else(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("avatars").await;
    let signed = app.register(&p.pk, "ava@example.com", PW).await;
    let at = access_token(&signed);
    let mut previous: Option<String> = None;
    for (format, body, multipart, content_type) in [
        ("png", picture(ImageFormat::Png, 40, 30), false, "image/png"),
        ("gif", picture(ImageFormat::Gif, 40, 30), true, "image/png"),
        (
            "webp",
            picture(ImageFormat::WebP, 40, 30),
            false,
            "image/png",
        ),
        ("jpeg", jpeg_with_exif(), true, "image/jpeg"),
    ] {
        // Declared as something else: the content decides.
        let (s, b) = upload(&app, &p, &at, body, "application/octet-stream", multipart).await;
        assert_eq!(s, 200, "{format}: {b}");
        let url = b["avatar_url"].as_str().unwrap().to_string();
        assert!(
            url.starts_with("http://localhost:8080/v1/avatars/prj_"),
            "{url}"
        );
        let got = fetch(&app, &url).await;
        assert_eq!(got.status(), 200, "{format}");
        let headers = got.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{format}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("sandbox")
        );
        let bytes = got.bytes().await.unwrap();
        let back = image::load_from_memory(&bytes).unwrap();
        assert!(back.width() == 40 || back.width() == 64, "{format}");
        // Metadata does not survive the re-encoding.
        assert!(
            !bytes.windows(4).any(|w| w == b"Exif"),
            "{format} kept its EXIF"
        );
        // The old picture is gone once replaced.
        if let Some(old) = previous.replace(url) {
            assert_eq!(fetch(&app, &old).await.status(), 404, "{old}");
        }
    }
    let (_, me) = app
        .authed(Method::GET, "/v1/users/me", &p.pk, &at, None)
        .await;
    assert_eq!(me["user"]["avatar_url"].as_str(), previous.as_deref());
    // Forty uploads at once: all stored in turn, each deleting what it
    // replaced, so one object is left, the one the user shows.
    let uploads = (0..40).map(|i| {
        let (app, p, at) = (&app, &p, at.clone());
        async move {
            let body = picture(ImageFormat::Png, 8 + i, 8);
            upload(app, p, &at, body, "image/png", false).await
        }
    });
    let results = futures_util::future::join_all(uploads).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    let dir = objects_dir(&app).join("avatars").join(&p.id);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 1, "{}", dir.display());
    let (_, me) = app
        .authed(Method::GET, "/v1/users/me", &p.pk, &at, None)
        .await;
    let shown = me["user"]["avatar_url"].as_str().unwrap();
    assert_eq!(fetch(&app, shown).await.status(), 200);
    // Big pictures are bounded.
    let (s, b) = upload(
        &app,
        &p,
        &at,
        picture(ImageFormat::Png, 2000, 1000),
        "image/png",
        false,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let big = fetch(&app, b["avatar_url"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap();
    let back = image::load_from_memory(&big).unwrap();
    assert_eq!((back.width(), back.height()), (512, 256));
    // Not images, whatever they claim; a bomb; too many bytes.
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#.to_vec();
    let html = b"<!doctype html><script>alert(document.cookie)</script>".to_vec();
    for (body, declared, multipart) in [
        (svg, "image/png", true),
        (html, "image/jpeg", false),
        (Vec::new(), "image/png", false),
    ] {
        let (s, b) = upload(&app, &p, &at, body, declared, multipart).await;
        assert_eq!(s, 415, "{b}");
        assert_eq!(b["error"]["code"], "unsupported_media_type");
    }
    let started = Instant::now();
    let (s, b) = upload(&app, &p, &at, pixel_bomb(), "image/png", false).await;
    assert_eq!(
        (s.as_u16(), b["error"]["code"].as_str()),
        (422, Some("image_too_large")),
        "{b}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the bomb took {:?}",
        started.elapsed()
    );
    let mut truncated = picture(ImageFormat::Png, 40, 30);
    truncated.truncate(60);
    let (s, b) = upload(&app, &p, &at, truncated, "image/png", false).await;
    assert_eq!(
        (s.as_u16(), b["error"]["code"].as_str()),
        (422, Some("invalid_image")),
        "{b}"
    );
    // 6 MiB declared: refused from the headers, before the body is read
    // (a client that keeps writing sees the connection closed).
    let (status, body) = declared_upload(&app, &p, &at, 6 * 1024 * 1024).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    let (s, b) = upload(&app, &p, &at, b"--x\r\n".to_vec(), "image/png", true).await;
    assert!(s.is_client_error(), "{s} {b}");
    // Signed in only; deleting removes the object.
    let (s, _) = crate::support::send(
        app.public_req(Method::PUT, "/v1/users/me/avatar")
            .header("x-project-key", &p.pk)
            .body(picture(ImageFormat::Png, 4, 4)),
    )
    .await;
    assert_eq!(s, 401);
    let (_, me) = app
        .authed(Method::GET, "/v1/users/me", &p.pk, &at, None)
        .await;
    let url = me["user"]["avatar_url"].as_str().unwrap().to_string();
    let (s, _) = app
        .authed(Method::DELETE, "/v1/users/me/avatar", &p.pk, &at, None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(fetch(&app, &url).await.status(), 404);
    let (_, me) = app
        .authed(Method::GET, "/v1/users/me", &p.pk, &at, None)
        .await;
    assert_eq!(me["user"]["avatar_url"], Value::Null);
    // Keys that are no key are simply not found.
    for key in ["..%2F..%2Fetc%2Fpasswd", "prj_x.0123.png", "x.y.svg"] {
        let got = fetch(&app, &format!("{}/v1/avatars/{key}", app.public)).await;
        assert_eq!(got.status(), 404, "{key}");
    }
    app.stop().await;
}

/// An S3-compatible server on loopback (s3s-fs, path-style, signed
/// requests checked against one key pair).
async fn s3_server(root: &std::path::Path, bucket: &str) -> std::net::SocketAddr {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    std::fs::create_dir_all(root.join(bucket)).unwrap();
    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single("test-ak", "test-sk"));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    addr
}

async fn avatars_in_an_s3_compatible_store(store: Store) {
    let root = std::env::temp_dir().join(format!(
        "identity-s3-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let _cleanup = crate::support::TempDir(root.clone());
    let addr = s3_server(&root, "media").await;
    let endpoint = format!("http://{addr}");
    let env = [
        ("IDENTITY_OBJECT_STORE_URL", "s3://media/team-a"),
        ("AWS_ACCESS_KEY_ID", "test-ak"),
        ("AWS_SECRET_ACCESS_KEY", "test-sk"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
    ];
    let Some(app) = TestApp::spawn_with(store, &env).await else {
        return;
    };
    let p = app.create_project("s3-avatars").await;
    let signed = app.register(&p.pk, "s3@example.com", PW).await;
    let at = access_token(&signed);
    let (s, b) = upload(
        &app,
        &p,
        &at,
        picture(ImageFormat::Png, 20, 20),
        "image/png",
        false,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let url = b["avatar_url"].as_str().unwrap().to_string();
    let got = fetch(&app, &url).await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/png");
    // The object is in the bucket, under the prefix.
    let name = url
        .rsplit('/')
        .next()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_string();
    let stored = root
        .join("media/team-a/avatars")
        .join(&p.id)
        .join(format!("{name}.png"));
    assert!(stored.exists(), "{}", stored.display());
    let (s, _) = app
        .authed(Method::DELETE, "/v1/users/me/avatar", &p.pk, &at, None)
        .await;
    assert_eq!(s, 204);
    assert!(!stored.exists());
    assert_eq!(fetch(&app, &url).await.status(), 404);
    app.stop().await;
}
