//! The documentation in `docs/` and the OpenAPI documents the listeners
//! serve cannot drift: every operation served is documented as
//! `` `METHOD /path` ``, and every such line in the docs is served. The
//! README points into `docs/`, and nothing sends a reader outside the
//! repository.

use std::collections::BTreeSet;

use reqwest::Method;

use crate::support::{Store, TestApp};

fn documented() -> (BTreeSet<String>, String) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut all = String::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            all.push_str(&std::fs::read_to_string(&path).unwrap());
            all.push('\n');
        }
    }
    let mut ops = BTreeSet::new();
    for chunk in all.split('`').skip(1).step_by(2) {
        let mut words = chunk.split_whitespace();
        if let (Some(method), Some(path), None) = (words.next(), words.next(), words.next())
            && ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method)
            && path.starts_with('/')
        {
            ops.insert(format!("{method} {path}"));
        }
    }
    (ops, all)
}

async fn served(app: &TestApp, base: &str) -> BTreeSet<String> {
    let doc: serde_json::Value = app
        .client
        .request(Method::GET, format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_and_openapi_agree() {
    let app = TestApp::spawn(Store::Sqlite).await.unwrap();
    let mut served_ops = served(&app, &app.public).await;
    served_ops.extend(served(&app, &app.admin).await);
    let (documented_ops, text) = documented();
    let undocumented: Vec<_> = served_ops.difference(&documented_ops).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in docs/: {undocumented:?}"
    );
    let unserved: Vec<_> = documented_ops.difference(&served_ops).collect();
    assert!(unserved.is_empty(), "in docs/ but not served: {unserved:?}");
    assert!(
        !text.contains("../shared") && !text.contains("API.md"),
        "docs/ points outside the repository"
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains("docs/README.md"),
        "the README does not link docs/"
    );
    assert!(
        !readme.contains("../shared"),
        "the README points outside the repository"
    );
    app.stop().await;
}
